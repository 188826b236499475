//! A [`Value`] into any `T: Deserialize`.

use num_bigint::BigInt;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use crate::error::{Error, Result};
use crate::value::Value;

/// Converts a [`Value`] into any deserialisable type — the inverse of [`crate::to_value`].
///
/// ```
/// use std::collections::HashMap;
/// let v = serde_modules::Value::Dict(vec![(serde_modules::Value::Int(1), serde_modules::Value::Str("one".into()))]);
/// let m: HashMap<i64, String> = serde_modules::from_value(v)?;
/// assert_eq!(m[&1], "one");
/// # Ok::<(), serde_modules::Error>(())
/// ```
///
/// # Errors
/// [`Error::Serde`] when the value does not have the shape `T` expects.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T> {
    T::deserialize(value)
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::None => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::BigInt(n) => visit_bigint(n, visitor),
            Value::Float(f) => visitor.visit_f64(f),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::List(items) | Value::Tuple(items) => visitor.visit_seq(SeqAccess(items.into_iter())),
            Value::Dict(items) => visitor.visit_map(MapAccess { items: items.into_iter(), pending: None }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::None => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            // `Vec<u8>` asks for a sequence; bytes are a sequence of small ints.
            Value::Bytes(b) => visitor
                .visit_seq(SeqAccess(b.into_iter().map(|x| Value::Int(x.into())).collect::<Vec<_>>().into_iter())),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::List(items) => match items
                .iter()
                .map(|v| match v {
                    Value::Int(i) => u8::try_from(*i).ok(),
                    _ => None,
                })
                .collect::<Option<Vec<u8>>>()
            {
                Some(bytes) => visitor.visit_byte_buf(bytes),
                None => Value::List(items).deserialize_any(visitor),
            },
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Value::Str(variant) => visitor.visit_enum(variant.into_deserializer()),
            Value::Dict(mut items) if items.len() == 1 => {
                let (variant, content) = items.pop().expect("one entry");
                visitor.visit_enum(EnumAccess { variant, content })
            }
            other => Err(Error::Serde(format!(
                "expected an enum (a variant name, or a one-entry dict), got a {}",
                other.type_name()
            ))),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}

fn visit_bigint<'de, V: Visitor<'de>>(n: BigInt, visitor: V) -> Result<V::Value> {
    if let Ok(u) = u64::try_from(&n) {
        visitor.visit_u64(u)
    } else if let Ok(i) = i128::try_from(&n) {
        visitor.visit_i128(i)
    } else if let Ok(u) = u128::try_from(&n) {
        visitor.visit_u128(u)
    } else {
        Err(Error::Serde(format!("integer {n} does not fit in 128 bits")))
    }
}

impl IntoDeserializer<'_, Error> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

struct SeqAccess(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for SeqAccess {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.0.next().map(|v| seed.deserialize(v)).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapAccess {
    items: std::vec::IntoIter<(Value, Value)>,
    pending: Option<Value>,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.items.next() {
            Some((k, v)) => {
                self.pending = Some(v);
                seed.deserialize(k).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let value = self.pending.take().ok_or_else(|| Error::Serde("map value without a key".to_owned()))?;
        seed.deserialize(value)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct EnumAccess {
    variant: Value,
    content: Value,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = Error;
    type Variant = VariantAccess;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, VariantAccess)> {
        Ok((seed.deserialize(self.variant)?, VariantAccess(self.content)))
    }
}

struct VariantAccess(Value);

impl<'de> de::VariantAccess<'de> for VariantAccess {
    type Error = Error;
    fn unit_variant(self) -> Result<()> {
        match self.0 {
            Value::None => Ok(()),
            other => Err(Error::Serde(format!("expected a unit variant, got a {}", other.type_name()))),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self.0)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_any(self.0, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_any(self.0, visitor)
    }
}
