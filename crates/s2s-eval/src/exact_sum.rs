//! Exactly rounded sums of floats, as Python's `math.fsum`.
//!
//! Corpus ROUGE is a mean of per-segment scores. Summed naively, that mean would change in its
//! last bits with the order of the segments and with how batches are merged; summed exactly,
//! it is one number however the corpus was split. This is Shewchuk's algorithm ("Adaptive
//! Precision Floating-Point Arithmetic and Fast Robust Geometric Predicates", 1997) as CPython
//! implements `math.fsum` (`Modules/mathmodule.c`), including its final round-half-even fix,
//! restricted to finite inputs.

/// A sum held exactly, as non-overlapping partial sums in increasing order of magnitude.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExactSum {
    /// Non-zero and non-overlapping; their exact sum is the sum of everything added.
    partials: Vec<f64>,
}

impl ExactSum {
    /// Adds a finite `x` exactly.
    pub(crate) fn add(&mut self, mut x: f64) {
        let mut kept = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            // Two-sum: hi + lo == x + y exactly.
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        if x != 0.0 {
            self.partials.push(x);
        }
    }

    /// Adds everything `other` holds, exactly.
    pub(crate) fn merge(&mut self, other: &ExactSum) {
        for &partial in &other.partials {
            self.add(partial);
        }
    }

    /// The exact sum rounded to the nearest `f64`, ties to even: what `math.fsum` returns for
    /// the same numbers in any order.
    pub(crate) fn value(&self) -> f64 {
        let p = &self.partials;
        let Some(mut n) = p.len().checked_sub(1) else {
            return 0.0;
        };
        let mut hi = p[n];
        let mut lo = 0.0;
        // Add from the top until the sum stops being exact.
        while n > 0 {
            n -= 1;
            let (x, y) = (hi, p[n]);
            hi = x + y;
            lo = y - (hi - x);
            if lo != 0.0 {
                break;
            }
        }
        // If the rest is a tie broken by the partials below, round the right way
        // (CPython: "sum([1e-16, 1, 1e16]) will round-up the last digit to two").
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }
}

/// Equal when the exact sums are equal, however they were accumulated.
impl PartialEq for ExactSum {
    fn eq(&self, other: &Self) -> bool {
        let mut difference = self.clone();
        for &partial in &other.partials {
            difference.add(-partial);
        }
        // Non-overlapping non-zero partials never cancel out, so an exact zero has none.
        difference.partials.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(xs: &[f64]) -> ExactSum {
        let mut s = ExactSum::default();
        for &x in xs {
            s.add(x);
        }
        s
    }

    #[test]
    fn matches_python_fsum() {
        // Values from `math.fsum` in CPython 3.11.
        assert_eq!(sum(&[0.1; 10]).value(), 1.0);
        assert_ne!([0.1; 10].iter().sum::<f64>(), 1.0);
        assert_eq!(sum(&[1e-16, 1.0, 1e16]).value(), 1.0000000000000002e16);
        assert_eq!(
            sum(&[1e100, 1.0, -1e100, 1e-100, 1e50, -1.0, -1e50]).value(),
            1e-100
        );
        assert_eq!(sum(&[]).value(), 0.0);
        assert_eq!(sum(&[0.0, 0.0]).value(), 0.0);
    }

    #[test]
    fn order_and_merging_do_not_change_the_sum() {
        let xs: Vec<f64> = (1..200).map(|i| 1.0 / f64::from(i)).collect();
        let forward = sum(&xs);
        let reversed: Vec<f64> = xs.iter().rev().copied().collect();
        let mut merged = sum(&xs[..77]);
        merged.merge(&sum(&xs[77..]));
        assert_eq!(forward.value(), sum(&reversed).value());
        assert_eq!(forward.value(), merged.value());
        assert_eq!(forward, merged);
        assert_ne!(forward, sum(&xs[1..]));
        assert_eq!(ExactSum::default(), sum(&[0.5, -0.5]));
    }
}
