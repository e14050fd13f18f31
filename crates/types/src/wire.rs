//! Small helpers for the canonical encoding: fixed-width big-endian integers, one-byte length prefixes,
//! strict booleans and option tags. Every form has exactly one encoding, so decode-then-encode gives back
//! the same bytes.

use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{Error as CodecError, Read};

pub(crate) fn write_u8_len(len: usize, buf: &mut impl BufMut) {
    // Callers only write values that passed their limits, which all fit in a byte (see limits.rs).
    buf.put_u8(u8::try_from(len).unwrap_or(u8::MAX));
}

pub(crate) fn read_u8_len(
    buf: &mut impl Buf,
    max: usize,
    context: &'static str,
) -> Result<usize, CodecError> {
    let len = usize::from(u8::read_cfg(buf, &())?);
    if len > max {
        return Err(CodecError::Invalid(context, "length above limit"));
    }
    Ok(len)
}

pub(crate) fn write_str(text: &str, buf: &mut impl BufMut) {
    write_u8_len(text.len(), buf);
    buf.put_slice(text.as_bytes());
}

pub(crate) fn read_str(
    buf: &mut impl Buf,
    max: usize,
    context: &'static str,
) -> Result<String, CodecError> {
    let len = read_u8_len(buf, max, context)?;
    if buf.remaining() < len {
        return Err(CodecError::EndOfBuffer);
    }
    let mut bytes = vec![0u8; len];
    buf.copy_to_slice(&mut bytes);
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid(context, "not UTF-8"))
}

pub(crate) fn write_option_u64(value: Option<u64>, buf: &mut impl BufMut) {
    match value {
        None => buf.put_u8(0),
        Some(value) => {
            buf.put_u8(1);
            buf.put_u64(value);
        }
    }
}

pub(crate) fn read_option_u64(
    buf: &mut impl Buf,
    context: &'static str,
) -> Result<Option<u64>, CodecError> {
    match u8::read_cfg(buf, &())? {
        0 => Ok(None),
        1 => Ok(Some(u64::read_cfg(buf, &())?)),
        _ => Err(CodecError::Invalid(context, "option tag is not 0 or 1")),
    }
}

pub(crate) const fn option_u64_size(value: Option<u64>) -> usize {
    match value {
        None => 1,
        Some(_) => 9,
    }
}
