//! Parameter shapes of the benchmarks and the memory example.

/// The parameter shapes of a workload: matrices and vectors.
pub struct Shapes {
    /// `[rows, columns]` of each matrix.
    pub matrices: Vec<[usize; 2]>,
    /// The length of each vector.
    pub vectors: Vec<usize>,
}

impl Shapes {
    /// `bert`, or a number of millions of parameters for the synthetic model.
    pub fn of(workload: &str) -> Shapes {
        if workload == "bert" {
            let d = 768;
            let mut shapes = Shapes {
                matrices: vec![],
                vectors: vec![],
            };
            for _ in 0..12 {
                for (inputs, outputs) in [(d, d), (d, d), (d, d), (d, d), (d, 4 * d), (4 * d, d)] {
                    shapes.matrices.push([outputs, inputs]);
                    shapes.vectors.push(outputs);
                }
                shapes.vectors.extend([d; 4]);
            }
            return shapes;
        }
        let millions: usize = workload.parse().expect("`bert` or a number of millions");
        // The side `n` of the two matrices so that `2 n^2 + 2 n` is about `millions` * 2^20.
        let n = (((millions << 20) as f64 / 2.0).sqrt()) as usize;
        Shapes {
            matrices: vec![[n, n]; 2],
            vectors: vec![n; 2],
        }
    }

    /// The number of parameters.
    pub fn numel(&self) -> usize {
        let matrices: usize = self.matrices.iter().map(|[a, b]| a * b).sum();
        matrices + self.vectors.iter().sum::<usize>()
    }
}
