//! Canary steps as instance counts: the one rounding rule every target uses to turn a traffic
//! percentage into replicas or instances.

/// `percent` of `total`, rounded up, so that a small step still gets a whole instance.
pub fn share(total: i32, percent: u8) -> i32 {
    let total = u64::try_from(total).unwrap_or(0);
    i32::try_from((total * u64::from(percent)).div_ceil(100)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_round_up() {
        assert_eq!(share(10, 10), 1);
        assert_eq!(share(4, 10), 1);
        assert_eq!(share(10, 25), 3);
        assert_eq!(share(4, 100), 4);
        assert_eq!(share(0, 50), 0);
    }
}
