//! Every tensor of a decoded record holds as many bytes as its shape and element type
//! declare, checked before a single tensor is built from it.
//!
//! Burn's recorders decode a tensor's bytes, shape and element type as three independent
//! fields, and Burn's ndarray backend builds its array from them without comparing the
//! three: a file (crafted, or corrupt in a way its checksum does not catch) whose bytes are
//! fewer than its shape declares would give a tensor that every later read or write runs
//! past. The audit walks the decoded item with a [`Serializer`] that only looks: it visits
//! each `TensorData` (the field names below are Burn's) and compares its byte count with its
//! shape; nothing is copied or allocated per element.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Serializer};

/// Why the bytes of a checkpoint were refused: by the audit here or by the Bin reader
/// (`super::bin_format`), whose serde error it is too.
#[derive(Debug)]
pub(super) struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Malformed {}

impl ser::Error for Malformed {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Malformed(msg.to_string())
    }
}

impl serde::de::Error for Malformed {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Malformed(msg.to_string())
    }
}

/// Checks every tensor in `item`; the first inconsistent one is the error.
pub(super) fn audit<T: Serialize>(item: &T) -> Result<usize, Malformed> {
    let mut walker = Walker::default();
    item.serialize(&mut walker)?;
    Ok(walker.tensors)
}

/// What a `TensorData` declared, gathered while its fields are visited.
#[derive(Default)]
struct TensorFacts {
    field: &'static str,
    bytes: Option<usize>,
    shape: Vec<u64>,
    dtype: Vec<&'static str>,
}

impl TensorFacts {
    /// Bytes per element of the declared element type (`Bool` carries its storage).
    fn element_size(&self) -> Result<u64, Malformed> {
        Ok(match self.dtype.as_slice() {
            ["F64" | "I64" | "U64"] => 8,
            ["F32" | "Flex32" | "I32" | "U32"] | ["Bool", "U32"] => 4,
            ["F16" | "BF16" | "I16" | "U16"] => 2,
            ["I8" | "U8"] | ["Bool", "Native" | "U8"] => 1,
            other => {
                return Err(Malformed(format!(
                    "a saved tensor has element type {}, which no optimizer state uses",
                    other.join("::")
                )));
            }
        })
    }

    fn check(&self) -> Result<(), Malformed> {
        let Some(bytes) = self.bytes else {
            return Err(Malformed("a saved tensor has no bytes".into()));
        };
        let size = self.element_size()?;
        let declared = self
            .shape
            .iter()
            .try_fold(size, |total, &dim| total.checked_mul(dim))
            .filter(|&total| usize::try_from(total).is_ok());
        if declared != Some(bytes as u64) {
            return Err(Malformed(format!(
                "a saved tensor of shape {:?} and element type {} holds {bytes} bytes, not {}",
                self.shape,
                self.dtype.join("::"),
                declared.map_or("a number that fits in memory".to_string(), |d| d
                    .to_string())
            )));
        }
        Ok(())
    }
}

/// The looking serializer: outside a tensor it only descends; inside one it notes the
/// byte count, the dimensions and the element type's variant names.
#[derive(Default)]
struct Walker {
    tensor: Option<TensorFacts>,
    /// Structs open inside the current tensor (its `Shape`, a quantization scheme): their
    /// fields and ends are not the tensor's.
    depth: usize,
    tensors: usize,
}

impl Walker {
    fn field(&self) -> &'static str {
        self.tensor.as_ref().map_or("", |t| t.field)
    }

    fn note_dim(&mut self, value: u64) {
        if let Some(tensor) = self.tensor.as_mut().filter(|t| t.field == "shape") {
            tensor.shape.push(value);
        }
    }

    fn note_variant(&mut self, name: &'static str, variant: &'static str) {
        let in_dtype = self.field() == "dtype" && matches!(name, "DType" | "BoolStore");
        if let Some(tensor) = self.tensor.as_mut().filter(|_| in_dtype) {
            tensor.dtype.push(variant);
        }
    }

    fn open_struct(&mut self, name: &'static str) -> Result<()> {
        match (&self.tensor, name) {
            (None, "TensorData") => self.tensor = Some(TensorFacts::default()),
            (None, _) => {}
            (Some(_), "TensorData") => {
                return Err(Malformed("a saved tensor holds another tensor".into()));
            }
            (Some(_), _) => self.depth += 1,
        }
        Ok(())
    }

    fn struct_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<()> {
        if let Some(tensor) = self.tensor.as_mut().filter(|_| self.depth == 0) {
            tensor.field = key;
        }
        value.serialize(&mut *self)
    }

    fn close_struct(&mut self) -> Result<()> {
        if self.depth > 0 {
            self.depth -= 1;
        } else if let Some(tensor) = self.tensor.take() {
            tensor.check()?;
            self.tensors += 1;
        }
        Ok(())
    }
}

type Result<T, E = Malformed> = std::result::Result<T, E>;

/// Scalars outside a tensor's shape say nothing about it.
macro_rules! ignore {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method(self, _: $ty) -> Result<()> {
            Ok(())
        }
    )*};
}

impl Serializer for &mut Walker {
    type Ok = ();
    type Error = Malformed;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    ignore!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_f32: f32, serialize_f64: f64, serialize_char: char,
        serialize_str: &str, serialize_unit_struct: &'static str,
    );

    fn serialize_u8(self, v: u8) -> Result<()> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.note_dim(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        if let Some(tensor) = self.tensor.as_mut().filter(|t| t.field == "bytes") {
            tensor.bytes = Some(v.len());
        }
        Ok(())
    }
    fn serialize_none(self) -> Result<()> {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.note_variant(name, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.note_variant(name, variant);
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self> {
        Ok(self)
    }
    // No element type is a tuple or struct variant: their names say nothing of a tensor.
    fn serialize_tuple_variant(self, _: &str, _: u32, _: &str, _: usize) -> Result<Self> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self> {
        Ok(self)
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Self> {
        self.open_struct(name)?;
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        _: &str,
        len: usize,
    ) -> Result<Self> {
        self.serialize_struct(name, len)
    }
}

/// Sequences, tuples and maps only descend.
macro_rules! descend {
    ($($part:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$part for &mut Walker {
            type Ok = ();
            type Error = Malformed;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

descend!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for &mut Walker {
    type Ok = ();
    type Error = Malformed;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

/// Structs name the tensor's fields as they pass; the tensor's own end checks it.
macro_rules! structs {
    ($($part:ident),*) => {$(
        impl ser::$part for &mut Walker {
            type Ok = ();
            type Error = Malformed;
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<()> {
                self.struct_field(key, value)
            }
            fn end(self) -> Result<()> {
                self.close_struct()
            }
        }
    )*};
}

structs!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{DType, TensorData};

    #[derive(Serialize)]
    struct State {
        time: usize,
        moments: Vec<TensorData>,
        name: String,
    }

    fn state(moments: Vec<TensorData>) -> State {
        State {
            time: 3,
            moments,
            name: "m".into(),
        }
    }

    #[test]
    fn consistent_tensors_pass_and_are_counted() {
        let item = state(vec![
            TensorData::new(vec![1.0f32; 6], [2, 3]),
            TensorData::new(vec![1.0f64; 4], [4]),
            TensorData::new(vec![true, false], [2]),
            TensorData::new(Vec::<f32>::new(), [0, 5]),
        ]);
        assert_eq!(audit(&item).unwrap(), 4);
    }

    #[test]
    fn a_tensor_with_fewer_bytes_than_its_shape_is_refused() {
        let mut short = TensorData::new(vec![1.0f32; 6], [2, 3]);
        short.shape = [2, 4].into();
        let err = audit(&state(vec![TensorData::new(vec![0.5f32; 2], [2]), short])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a saved tensor of shape [2, 4] and element type F32 holds 24 bytes, not 32"
        );
    }

    #[test]
    fn a_shape_whose_size_overflows_is_refused() {
        let mut huge = TensorData::new(vec![1.0f32; 2], [2]);
        huge.shape = [usize::MAX, 2].into();
        let err = audit(&state(vec![huge])).unwrap_err();
        assert!(
            err.to_string().contains("not a number that fits in memory"),
            "{err}"
        );
    }

    #[test]
    fn another_element_type_changes_the_expected_size() {
        let mut retyped = TensorData::new(vec![1.0f32; 4], [4]);
        retyped.dtype = DType::F64;
        let err = audit(&state(vec![retyped])).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("element type F64 holds 16 bytes, not 32"),
            "{err}"
        );
    }
}
