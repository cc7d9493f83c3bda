//! Every optimizer's rule, hyperparameters and coefficients, one module each (LAMB and
//! RaLars share theirs), and the element-wise blocks they are built from.
//!
//! Each rule is a macro (`__rule_<name>!`) that writes its structs and phases in a mode:
//! `cpu` here, generic over [`Arith`](crate::Arith), and `cube` in the crate that launches
//! the kernels ([`kernels!`](crate::kernels!)).

pub mod blocks;
pub mod moments;

pub mod adabelief;
pub mod adamp;
pub mod adan;
pub mod ademamix;
pub mod lamb;
pub mod lars;
pub mod tadam;

/// Up to four whole-tensor sums, as a summing pass stores them.
#[doc(hidden)]
#[macro_export]
macro_rules! __rule_sums {
    ($mode:ident) => {
        $crate::dual! { $mode;
            /// Up to four whole-tensor sums, as a summing pass stores them.
            struct Sums { s0, s1, s2, s3 }
            ;
        }
    };
}

/// The sums of a summing pass.
pub mod sums {
    __rule_sums!(cpu);
}
