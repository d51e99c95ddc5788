//! The `depends_on` graph: cycle detection and topological layers (providers first).

use std::collections::{BTreeMap, BTreeSet};

/// Services and their dependencies, all names known to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGraph {
    depends_on: BTreeMap<String, BTreeSet<String>>,
}

impl ServiceGraph {
    pub fn new<'a>(edges: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Self {
        let depends_on = edges
            .into_iter()
            .map(|(service, deps)| (service.to_string(), deps.iter().cloned().collect()))
            .collect();
        ServiceGraph { depends_on }
    }

    pub fn dependencies(&self, service: &str) -> impl Iterator<Item = &str> {
        self.depends_on
            .get(service)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Services that depend on `service` directly.
    pub fn dependents<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.depends_on
            .iter()
            .filter(move |(_, deps)| deps.contains(service))
            .map(|(name, _)| name.as_str())
    }

    /// The first cycle found, as a closed walk `a → b → a`, in a deterministic order.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        fn visit<'a>(
            graph: &'a ServiceGraph,
            node: &'a str,
            marks: &mut BTreeMap<&'a str, Mark>,
            stack: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            match marks.get(node) {
                Some(Mark::Done) => return None,
                Some(Mark::Visiting) => {
                    let start = stack.iter().position(|n| *n == node).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(node.to_string());
                    return Some(cycle);
                }
                None => {}
            }
            marks.insert(node, Mark::Visiting);
            stack.push(node);
            for dependency in graph.dependencies(node) {
                if let Some(cycle) = visit(graph, dependency, marks, stack) {
                    return Some(cycle);
                }
            }
            stack.pop();
            marks.insert(node, Mark::Done);
            None
        }
        let mut marks = BTreeMap::new();
        self.depends_on
            .keys()
            .find_map(|node| visit(self, node, &mut marks, &mut Vec::new()))
    }

    /// Topological layers: every service comes after all of its dependencies; a layer's services
    /// are independent of each other. Sorted within a layer. Assumes no cycle.
    pub fn layers(&self) -> Vec<Vec<String>> {
        let mut placed: BTreeMap<&str, usize> = BTreeMap::new();
        let mut layers: Vec<Vec<String>> = Vec::new();
        while placed.len() < self.depends_on.len() {
            let layer: Vec<&str> = self
                .depends_on
                .iter()
                .filter(|(name, deps)| {
                    !placed.contains_key(name.as_str())
                        && deps.iter().all(|d| {
                            placed.contains_key(d.as_str()) || !self.depends_on.contains_key(d)
                        })
                })
                .map(|(name, _)| name.as_str())
                .collect();
            if layer.is_empty() {
                break; // a cycle; validation reports it
            }
            for name in &layer {
                placed.insert(name, layers.len());
            }
            layers.push(layer.into_iter().map(str::to_string).collect());
        }
        layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> ServiceGraph {
        let owned: Vec<(String, Vec<String>)> = edges
            .iter()
            .map(|(s, d)| (s.to_string(), d.iter().map(|x| x.to_string()).collect()))
            .collect();
        ServiceGraph::new(owned.iter().map(|(s, d)| (s.as_str(), d.as_slice())))
    }

    #[test]
    fn layers_put_providers_first_and_independents_together() {
        let g = graph(&[
            ("payments", &[]),
            ("api", &["payments"]),
            ("web", &["api"]),
            ("worker", &["api"]),
        ]);
        assert_eq!(
            g.layers(),
            vec![vec!["payments"], vec!["api"], vec!["web", "worker"]]
        );
        assert_eq!(g.find_cycle(), None);
    }

    #[test]
    fn finds_and_closes_a_cycle() {
        let g = graph(&[("api", &["web"]), ("web", &["api"]), ("db", &[])]);
        assert_eq!(g.find_cycle().unwrap(), vec!["api", "web", "api"]);
    }

    #[test]
    fn finds_a_self_dependency() {
        let g = graph(&[("api", &["api"])]);
        assert_eq!(g.find_cycle().unwrap(), vec!["api", "api"]);
    }

    #[test]
    fn dependents_are_the_reverse_edges() {
        let g = graph(&[("payments", &[]), ("api", &["payments"]), ("web", &["api"])]);
        assert_eq!(g.dependents("api").collect::<Vec<_>>(), vec!["web"]);
    }
}
