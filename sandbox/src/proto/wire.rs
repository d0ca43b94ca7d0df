//! The protobuf wire format: varints, length-delimited fields and fixed-width numbers.

use super::ProtoDecodeError;

pub enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed64(u64),
    Fixed32(u32),
}

pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn varint(&mut self) -> Result<u64, ProtoDecodeError> {
        let mut out = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first().ok_or(ProtoDecodeError::Truncated)?;
            self.0 = rest;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtoDecodeError::Truncated)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoDecodeError> {
        if self.0.len() < n {
            return Err(ProtoDecodeError::Truncated);
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(b)
    }

    pub fn next_field(&mut self) -> Result<Option<(u64, Field<'a>)>, ProtoDecodeError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoDecodeError::Truncated)?;
                Field::Bytes(self.take(len)?)
            }
            1 => {
                let b = self.take(8)?;
                Field::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| ProtoDecodeError::Truncated)?,
                ))
            }
            5 => {
                let b = self.take(4)?;
                Field::Fixed32(u32::from_le_bytes(
                    b.try_into().map_err(|_| ProtoDecodeError::Truncated)?,
                ))
            }
            w => return Err(ProtoDecodeError::WireType(w)),
        };
        Ok(Some((tag >> 3, field)))
    }
}

/// All fields of one message, in wire order.
pub fn fields(b: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ProtoDecodeError> {
    let mut r = Reader(b);
    let mut out = vec![];
    while let Some(f) = r.next_field()? {
        out.push(f);
    }
    Ok(out)
}
