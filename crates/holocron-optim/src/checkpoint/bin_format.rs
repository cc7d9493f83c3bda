//! A reader of Burn's Bin format (bincode 2, standard configuration: little-endian,
//! variable-length integers) that never allocates more than the bytes it was given.
//!
//! Burn's `BinFileRecorder` decodes with bincode, which allocates a byte buffer of whatever
//! length the file declares before reading it: nine bytes declaring 2^60 abort the process
//! (the allocation fails, and no `catch_unwind` can stop that). A checkpoint's header and
//! checksum refuse every accidental change, but a file can be crafted with a right
//! checksum. This reader decodes the same bytes into the same types, checking every
//! declared length against the bytes that are left before it is used: byte buffers and
//! strings are borrowed from the input, and sequences are grown by serde, which reserves
//! at most a bounded amount ahead of the elements it has read.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::audit::Malformed as BinError;

type Result<T, E = BinError> = std::result::Result<T, E>;

/// `T` from `bytes`, as Burn's Bin recorders wrote it: from all of them if `whole`, else
/// from their start.
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8], whole: bool) -> Result<T> {
    let mut reader = Reader { input: bytes };
    let value = T::deserialize(&mut reader)?;
    if whole && !reader.input.is_empty() {
        return Err(BinError(format!(
            "{} bytes after the end of the record",
            reader.input.len()
        )));
    }
    Ok(value)
}

/// The bytes a gzip stream (Burn's `BinGzFileRecorder`) holds, refused beyond 64 times
/// the compressed size plus 1 MiB (float tensors hardly compress, so a real checkpoint
/// is far below; a crafted stream that expands further is refused, not decompressed).
pub(super) fn gunzip(compressed: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let cap = compressed.len().saturating_mul(64).saturating_add(1 << 20);
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| BinError(format!("not a gzip stream: {err}")))?;
    if bytes.len() > cap {
        return Err(BinError(format!(
            "a gzip stream of {} bytes that expands beyond {cap}",
            compressed.len()
        )));
    }
    Ok(bytes)
}

struct Reader<'de> {
    input: &'de [u8],
}

impl<'de> Reader<'de> {
    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        if n > self.input.len() {
            return Err(BinError(format!(
                "{n} bytes declared, {} left",
                self.input.len()
            )));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    /// bincode's variable-length unsigned integer: one byte below 251, else a marker
    /// (251: u16, 252: u32, 253: u64, 254: u128) and the value, little-endian.
    fn varint(&mut self) -> Result<u128> {
        Ok(match self.array::<1>()?[0] {
            byte @ 0..=250 => u128::from(byte),
            251 => u128::from(u16::from_le_bytes(self.array()?)),
            252 => u128::from(u32::from_le_bytes(self.array()?)),
            253 => u128::from(u64::from_le_bytes(self.array()?)),
            254 => u128::from_le_bytes(self.array()?),
            _ => return Err(BinError("an invalid integer marker".into())),
        })
    }

    fn unsigned<T: TryFrom<u128>>(&mut self, what: &str) -> Result<T> {
        T::try_from(self.varint()?).map_err(|_| BinError(format!("{what} out of range")))
    }

    /// bincode's zigzag signed integer.
    fn signed<T: TryFrom<i128>>(&mut self, what: &str) -> Result<T> {
        let n = self.varint()?;
        let value = if n % 2 == 0 {
            (n / 2) as i128
        } else {
            !((n / 2) as i128)
        };
        T::try_from(value).map_err(|_| BinError(format!("{what} out of range")))
    }

    /// A length that the bytes left can hold (every element takes at least one byte in
    /// the records this crate writes).
    fn length(&mut self) -> Result<usize> {
        let len: usize = self.unsigned("a length")?;
        if len > self.input.len() {
            return Err(BinError(format!(
                "a length of {len}, with {} bytes left",
                self.input.len()
            )));
        }
        Ok(len)
    }
}

macro_rules! unsigned {
    ($($method:ident: $ty:ty => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(self.unsigned::<$ty>(stringify!($ty))?)
        }
    )*};
}

macro_rules! signed {
    ($($method:ident: $ty:ty => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(self.signed::<$ty>(stringify!($ty))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = BinError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(BinError("the Bin format does not describe itself".into()))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.array::<1>()?[0] {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            _ => Err(BinError("an invalid bool".into())),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u8(self.array::<1>()?[0])
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i8(self.array::<1>()?[0] as i8)
    }

    unsigned!(
        deserialize_u16: u16 => visit_u16,
        deserialize_u32: u32 => visit_u32,
        deserialize_u64: u64 => visit_u64,
        deserialize_u128: u128 => visit_u128
    );
    signed!(
        deserialize_i16: i16 => visit_i16,
        deserialize_i32: i32 => visit_i32,
        deserialize_i64: i64 => visit_i64,
        deserialize_i128: i128 => visit_i128
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f32(f32::from_le_bytes(self.array()?))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f64(f64::from_le_bytes(self.array()?))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // UTF-8, one to four bytes, the first telling how many.
        let first = self.input.first().copied().unwrap_or(0);
        let width = match first {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        let bytes = self.take(width)?;
        let text = std::str::from_utf8(bytes).map_err(|_| BinError("an invalid char".into()))?;
        visitor.visit_char(text.chars().next().expect("one char"))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.length()?;
        let text = std::str::from_utf8(self.take(len)?)
            .map_err(|_| BinError("a string that is not UTF-8".into()))?;
        visitor.visit_borrowed_str(text)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.length()?;
        visitor.visit_borrowed_bytes(self.take(len)?)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.array::<1>()?[0] {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            _ => Err(BinError("an invalid option tag".into())),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &str, v: V) -> Result<V::Value> {
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &str, v: V) -> Result<V::Value> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.length()?;
        visitor.visit_seq(Elements {
            reader: self,
            left: len,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Elements {
            reader: self,
            left: len,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.length()?;
        visitor.visit_map(Elements {
            reader: self,
            left: len,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(fields.len(), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(self, _: &str, _: &[&str], v: V) -> Result<V::Value> {
        v.visit_enum(self)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(BinError("the Bin format has no identifiers".into()))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(BinError("the Bin format cannot skip a value".into()))
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a sequence, tuple or map whose length is known.
struct Elements<'a, 'de> {
    reader: &'a mut Reader<'de>,
    left: usize,
}

impl<'de> Elements<'_, 'de> {
    /// The next element (or key), if any is left.
    fn next<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = BinError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.next(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> MapAccess<'de> for Elements<'_, 'de> {
    type Error = BinError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        self.next(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.reader)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> EnumAccess<'de> for &mut Reader<'de> {
    type Error = BinError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let index: u32 = self.unsigned("a variant index")?;
        let value = seed.deserialize(index.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> VariantAccess<'de> for &mut Reader<'de> {
    type Error = BinError;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_tuple(self, fields.len(), visitor)
    }
}
