//! The element-wise blocks the rules are built from, each written once for the CPU loops,
//! the device tensors and the kernels.

#[doc(hidden)]
#[macro_export]
macro_rules! __rule_blocks {
    ($mode:ident) => {
        $crate::dual! { $mode;
            ;
            #[cube]
            /// An exponential moving average: `beta average + fresh x` (`fresh = 1 - beta`).
            fn ema(average: F, x: F, beta: F, fresh: F) -> F {
                average * beta + x * fresh
            }

            #[cube]
            /// The value Adam's denominator uses: the second moment, or with AMSGrad its
            /// running maximum (the maximum so far taken against the new average).
            fn running_max(max_so_far: F, average: F) flags(amsgrad) -> F {
                let mut value = average;
                if amsgrad {
                    value = max(max_so_far, average);
                }
                value
            }

            #[cube]
            /// Adam's denominator `sqrt(v) / sqrt(bias_correction) + epsilon`, from the inverse
            /// square root of the correction.
            fn denominator(second: F, inverse_sqrt_correction: F, epsilon: F) -> F {
                F::sqrt(second) * inverse_sqrt_correction + epsilon
            }

            #[cube]
            /// L2 weight decay added to a gradient: `x + lambda p`, and `x` itself when
            /// `lambda` is 0, as holocron's and PyTorch's `if weight_decay != 0` skip the
            /// term. The term then needs no parameter, so a summing pass that reads it for
            /// nothing else can leave its lane out (`Rule::sums_read_param`), and a
            /// non-finite parameter does not reach `x`.
            fn l2(x: F, p: F, weight_decay: F) -> F {
                select(equals::<F>(weight_decay, F::new(0.0)), x, x + p * weight_decay)
            }

            #[cube]
            /// A layer-wise trust ratio: `clamp(norm, lo, hi) / denominator`, and 1 when
            /// either side is 0 (a mask, not a branch: no value is read back) or the tensor is
            /// left out of the ratio (`trusted` 0).
            fn trust_ratio(norm: F, denominator: F, lo: F, hi: F, trusted: F) -> F {
                let numerator = min(max(norm, lo), hi);
                let zero = F::new(0.0);
                let degenerate = either::<F>(
                    either::<F>(equals::<F>(numerator, zero), equals::<F>(denominator, zero)),
                    equals::<F>(trusted, zero),
                );
                let safe = select(degenerate, F::new(1.0), denominator);
                select(degenerate, F::new(1.0), numerator / safe)
            }
        }
    };
}
__rule_blocks!(cpu);
