//! Release progress for people (a line per step; spinners for running steps on a terminal) and
//! for machines (one JSON object per line on stdout).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use jiff::Timestamp;

use super::timeline::Timeline;
use crate::execute::{Clock, Event, Reporter};
use crate::plan::StepId;

/// One JSON object per event, stamped with `ts` (RFC 3339, UTC, when it happened) and, on a
/// completion, `elapsed_ms`.
pub struct JsonReporter {
    clock: Arc<dyn Clock>,
    timeline: Mutex<Timeline>,
}

impl JsonReporter {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        JsonReporter {
            clock,
            timeline: Mutex::new(Timeline::default()),
        }
    }

    /// The JSON line for `event`, which happened at `now`.
    fn line(&self, event: &Event, now: Timestamp) -> Option<String> {
        let elapsed = self.timeline.lock().ok()?.observe(event, now);
        let mut value = serde_json::to_value(event).ok()?;
        let object = value.as_object_mut()?;
        let ts = now.round(jiff::Unit::Millisecond).unwrap_or(now);
        object.insert("ts".to_string(), ts.to_string().into());
        if let Some(elapsed) = elapsed {
            let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            object.insert("elapsed_ms".to_string(), millis.into());
        }
        serde_json::to_string(&value).ok()
    }
}

impl Reporter for JsonReporter {
    fn report(&self, event: &Event) {
        if let Some(line) = self.line(event, self.clock.now()) {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

pub struct HumanReporter {
    bars: Option<(MultiProgress, Mutex<BTreeMap<StepId, ProgressBar>>)>,
    clock: Arc<dyn Clock>,
    timeline: Mutex<Timeline>,
}

impl HumanReporter {
    /// Spinners only when stderr is a terminal and progress was not turned off.
    pub fn new(progress: bool, clock: Arc<dyn Clock>) -> Self {
        let bars = (progress && std::io::stderr().is_terminal())
            .then(|| (MultiProgress::new(), Mutex::new(BTreeMap::new())));
        HumanReporter {
            bars,
            clock,
            timeline: Mutex::new(Timeline::default()),
        }
    }

    fn line(&self, text: String) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Reporter for HumanReporter {
    fn report(&self, event: &Event) {
        if let Ok(mut timeline) = self.timeline.lock() {
            timeline.observe(event, self.clock.now());
        }
        match event {
            Event::StepStarted {
                step,
                phase,
                service,
                action,
            } => {
                let text = format!("{phase:<9} {service:<12} {action}");
                if let Some((multi, bars)) = &self.bars {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_message(text);
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    if let Ok(mut bars) = bars.lock() {
                        bars.insert(*step, bar);
                    }
                } else {
                    self.line(format!("  … {text}"));
                }
            }
            Event::StepSucceeded {
                step,
                phase,
                service,
            } => {
                self.finish(*step);
                self.line(format!("  ✓ {phase:<9} {service}"));
            }
            Event::StepFailed {
                step,
                phase,
                service,
                error,
                help,
            } => {
                self.finish(*step);
                self.line(format!("  ✗ {phase:<9} {service}: {error}"));
                if let Some(help) = help {
                    self.line(format!("    help: {help}"));
                }
            }
            Event::StepDeferred { service, until, .. } => {
                self.line(format!("  ⧗ cleanup   {service} kept warm until {until}"))
            }
            Event::RollbackStarted { reason } => self.line(format!("rolling back: {reason}")),
            Event::Finished { outcome } => {
                self.line(format!("release {outcome}"));
                self.summary();
            }
            Event::Warning { message } => self.line(format!("warning: {message}")),
            Event::Note { message } => self.line(message.clone()),
        }
    }
}

impl HumanReporter {
    /// Where the time went, after the outcome: the phases and the slowest service on the path.
    fn summary(&self) {
        let Ok(mut timeline) = self.timeline.lock() else {
            return;
        };
        let summary = timeline.summary().to_string();
        *timeline = Timeline::default();
        drop(timeline);
        if !summary.is_empty() {
            self.line(format!("took: {summary}"));
        }
    }

    fn finish(&self, step: StepId) {
        if let Some((_, bars)) = &self.bars
            && let Some(bar) = bars.lock().ok().and_then(|mut b| b.remove(&step))
        {
            bar.finish_and_clear();
        }
    }
}
