//! CSV row checks on every core, with the answers of a reader going front to back.
//!
//! The rules are `csv_core`'s (the reader the `csv` crate uses): `,` separates fields, a record ends
//! at `\n`, `\r` or `\r\n`, blank lines are skipped, a `"` opens a quoted field only at the start of a
//! field (elsewhere it is data), and inside a quoted field `""` is a quote and a newline is data.
//!
//! Records are checked in segments, in parallel. A segment must begin where a record begins, and
//! that depends on quoting, so one pass over the quote characters alone ([`memchr`]) tracks which
//! parts of the file are inside quotes and cuts each segment after the first newline outside quotes
//! past its nominal end. Each segment then runs its own reader; the first bad row of the first
//! segment that has one is the file's first bad row, and its line is counted from the newlines
//! before its segment.

use std::ops::ControlFlow;

use csv_core::{ReadRecordResult, Reader};
use memchr::memchr;
use rayon::prelude::*;

use crate::error::{Result, StoreError};

/// The smallest segment checked on its own, in bytes (smaller files are one segment).
const SEGMENT_BYTES_MIN: usize = 4 << 20;
/// Segments per rayon thread, so a slow segment does not leave a core idle.
const SEGMENTS_PER_THREAD: usize = 4;
/// Bytes of field contents a reader writes before its buffer is emptied.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Field ends a reader records before they are counted and emptied.
const SCRATCH_FIELDS: usize = 1024;
/// The UTF-8 byte order mark, which a reader skips only at the very start of its input.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Checks that `bytes` (the file `name`) has a header row and that every row has its number of
/// fields.
pub(super) fn check(name: &str, bytes: &[u8]) -> Result<()> {
    let segments = rayon::current_num_threads().max(1) * SEGMENTS_PER_THREAD;
    let every = (bytes.len() / segments).max(SEGMENT_BYTES_MIN);
    check_in_segments(name, bytes, every)
}

/// [`check`] with segments cut about every `every` bytes.
fn check_in_segments(name: &str, bytes: &[u8], every: usize) -> Result<()> {
    let mut expected = None;
    let header_bytes = each_record(bytes, |fields, _| {
        expected = Some(fields);
        ControlFlow::Break(())
    });
    let Some(expected) = expected else {
        return Err(StoreError::CsvMissingHeader {
            name: name.to_string(),
        });
    };
    // Segment starts in the file; the first segment holds the header too, read by the same
    // reader, as a reader skips a byte order mark only at its very start.
    let mut starts = segment_starts(&bytes[header_bytes..], every.max(1));
    starts[0] = 0;
    for start in &mut starts[1..] {
        *start += header_bytes;
    }
    starts.dedup();
    let first_bad = starts
        .par_windows(2)
        .enumerate()
        .find_map_first(|(index, window)| {
            // The header is the first segment's first record; its rows start after it.
            let rows = &bytes[window[0].max(header_bytes)..window[1]];
            if quote_free_rows_match(rows, expected) {
                return None;
            }
            first_ragged(&bytes[window[0]..window[1]], expected, index == 0).map(|bad| (index, bad))
        });
    match first_bad {
        None => Ok(()),
        Some((index, bad)) => Err(StoreError::CsvRaggedRow {
            name: name.to_string(),
            line: line_in_file(bytes, starts[index], &bad),
            expected,
            found: bad.found,
        }),
    }
}

/// Bytes the quote-free check classifies at once: one `u64` word.
const WORD_BYTES: usize = 8;

/// Whether `rows` (which begins where a record begins) holds no `"` and every record in it has
/// `expected` fields; `false` leaves the answer to the reader. Without quotes a record is a
/// non-empty run of bytes between line ends (`\n` or `\r`; blank lines are skipped), and its fields
/// are its commas plus one. Bytes are classified a word at a time (the high bit of each byte of a
/// flag word says whether it is a comma, a line end or a quote), each line's commas are counted from
/// the flags, and this runs several times faster than the reader's state machine on the numeric
/// tables datasets mostly are. It stops at the first quote or mismatch, so a quoted segment is not
/// scanned twice.
fn quote_free_rows_match(rows: &[u8], expected: usize) -> bool {
    let mut line_start = 0usize;
    let mut commas = 0usize;
    let mut words = rows.chunks_exact(WORD_BYTES);
    // The last few bytes, padded with zeros (which are none of the bytes looked for).
    let mut tail = [0u8; WORD_BYTES];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    let whole = words.by_ref().map(|word| {
        let mut bytes = [0u8; WORD_BYTES];
        bytes.copy_from_slice(word);
        bytes
    });
    for (index, word) in whole.chain(std::iter::once(tail)).enumerate() {
        let word = u64::from_le_bytes(word);
        if bytes_equal(word, b'"') != 0 {
            return false;
        }
        let comma_flags = bytes_equal(word, b',');
        let mut ends = bytes_equal(word, b'\n') | bytes_equal(word, b'\r');
        // Flags of this word whose commas are already counted.
        let mut counted = 0u64;
        while ends != 0 {
            let bit = ends.trailing_zeros();
            let before = (1u64 << bit) - 1;
            commas += (comma_flags & before & !counted).count_ones() as usize;
            let end = index * WORD_BYTES + bit as usize / 8;
            if end > line_start && commas + 1 != expected {
                return false;
            }
            commas = 0;
            line_start = end + 1;
            counted = before | (1u64 << bit);
            ends &= ends - 1;
        }
        commas += (comma_flags & !counted).count_ones() as usize;
    }
    // A last record without a line end.
    line_start >= rows.len() || commas + 1 == expected
}

/// The high bit of each byte of `word` that equals `byte` (and no other bit).
#[inline(always)]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW_SEVEN: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let zero_where_equal = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((zero_where_equal & LOW_SEVEN) + LOW_SEVEN) | zero_where_equal | LOW_SEVEN)
}

/// A row with the wrong number of fields, as its segment's reader saw it.
struct Ragged {
    /// The reader's line when the row's read began (1-based within the segment).
    line: u64,
    /// Its fields.
    found: usize,
    /// Whether it is the segment's first row.
    first: bool,
}

/// The line a reader going front to back reports for `bad`, found in the segment starting at
/// `start`. That reader reports the line it was on when the row's read began, which was right
/// after the previous row ended: before the blank lines in between, and before the `\n` of a
/// `\r\n` that ended it. Within a segment its own reader saw the same; for a segment's first row
/// the previous row is in the segment before.
fn line_in_file(bytes: &[u8], start: usize, bad: &Ragged) -> u64 {
    let newlines = |bytes: &[u8]| bytes.iter().filter(|&&byte| byte == b'\n').count() as u64;
    if !bad.first || start == 0 {
        return newlines(&bytes[..start]) + bad.line;
    }
    // The line ends between the previous row and this segment (a segment starts after one).
    let ended_at = bytes[..start]
        .iter()
        .rposition(|&byte| byte != b'\n' && byte != b'\r')
        .map_or(0, |last| last + 1);
    1 + newlines(&bytes[..ended_at]) + u64::from(bytes[ended_at] == b'\n')
}

/// The first record of `segment` (read from its start, skipping the first record if it is the
/// file's header) whose field count is not `expected`.
fn first_ragged(segment: &[u8], expected: usize, header: bool) -> Option<Ragged> {
    let mut bad = None;
    let mut records = 0usize;
    each_record(segment, |fields, line| {
        records += 1;
        if (header && records == 1) || fields == expected {
            ControlFlow::Continue(())
        } else {
            bad = Some(Ragged {
                line,
                found: fields,
                first: records == 1,
            });
            ControlFlow::Break(())
        }
    });
    bad
}

/// Reads `bytes` from its start, calling `record(fields, line)` for each record, where `line` is
/// the reader's line count when the record's read began (what the `csv` crate reports as a
/// record's line), until `record` breaks. Returns the bytes read.
fn each_record(bytes: &[u8], mut record: impl FnMut(usize, u64) -> ControlFlow<()>) -> usize {
    let mut reader = Reader::new();
    // Field contents are not kept: full buffers are simply emptied and the fields counted.
    let mut scratch = vec![0u8; SCRATCH_BYTES];
    let mut ends = vec![0usize; SCRATCH_FIELDS];
    let mut input = bytes;
    let mut fields = 0usize;
    let mut line = reader.line();
    loop {
        // Once `input` is empty, reading it again tells the reader the input has ended.
        let (result, read, _, ended) = reader.read_record(input, &mut scratch, &mut ends);
        input = &input[read..];
        fields += ended;
        match result {
            ReadRecordResult::InputEmpty
            | ReadRecordResult::OutputFull
            | ReadRecordResult::OutputEndsFull => {}
            ReadRecordResult::Record => {
                if record(fields, line).is_break() {
                    return bytes.len() - input.len();
                }
                fields = 0;
                line = reader.line();
            }
            ReadRecordResult::End => return bytes.len(),
        }
    }
}

/// Where segments of `body` (which begins where a record begins) start: 0, then after the first
/// newline outside quotes at or past every `every` bytes from the previous start, then
/// `body.len()`.
fn segment_starts(body: &[u8], every: usize) -> Vec<usize> {
    let mut starts = vec![0];
    let mut next_cut = every;
    let mut position = 0;
    let mut quoted = false;
    while next_cut < body.len() {
        if quoted {
            // Inside a quoted field until a `"` that is not doubled.
            let Some(offset) = memchr(b'"', &body[position..]) else {
                break;
            };
            let at = position + offset;
            if body.get(at + 1) == Some(&b'"') {
                position = at + 2;
            } else {
                quoted = false;
                position = at + 1;
            }
            continue;
        }
        // Outside quotes until the next `"` that opens a field.
        let opening = opening_quote(body, position);
        let end = opening.unwrap_or(body.len());
        while next_cut < end {
            let Some(offset) = memchr(b'\n', &body[next_cut.max(position)..end]) else {
                break;
            };
            let start = next_cut.max(position) + offset + 1;
            // A reader skips a byte order mark only at its input's start: never start there.
            if start < body.len() && !body[start..].starts_with(BYTE_ORDER_MARK) {
                starts.push(start);
                next_cut = start + every;
            } else {
                next_cut = start;
            }
        }
        match opening {
            Some(at) => {
                quoted = true;
                position = at + 1;
            }
            None => break,
        }
    }
    starts.push(body.len());
    starts.dedup();
    starts
}

/// The first `"` at or after `from` that opens a quoted field: at the start of `body` or right
/// after a separator or a line end (`from` is outside quotes).
fn opening_quote(body: &[u8], from: usize) -> Option<usize> {
    let mut position = from;
    loop {
        let at = position + memchr(b'"', &body[position..])?;
        if at == 0 || matches!(body[at - 1], b',' | b'\n' | b'\r') {
            return Some(at);
        }
        position = at + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the `csv` crate, reading front to back, says about `bytes`.
    fn sequential(bytes: &[u8]) -> std::result::Result<(), (u64, usize, usize)> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut record = csv::ByteRecord::new();
        if !reader.read_byte_record(&mut record).unwrap() {
            return Err((0, 0, 0));
        }
        let expected = record.len();
        while reader.read_byte_record(&mut record).unwrap() {
            if record.len() != expected {
                let line = record.position().map_or(0, |position| position.line());
                return Err((line, expected, record.len()));
            }
        }
        Ok(())
    }

    fn segmented(bytes: &[u8], every: usize) -> std::result::Result<(), (u64, usize, usize)> {
        match check_in_segments("t.csv", bytes, every) {
            Ok(()) => Ok(()),
            Err(StoreError::CsvMissingHeader { .. }) => Err((0, 0, 0)),
            Err(StoreError::CsvRaggedRow {
                line,
                expected,
                found,
                ..
            }) => Err((line, expected, found)),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn quoted_newlines_do_not_start_segments() {
        let bytes = b"a,b\n\"x\ny,z\",1\n\"q\"\"\n\",2\n3,4\n";
        for every in 1..bytes.len() {
            assert_eq!(segmented(bytes, every), Ok(()), "every {every}");
        }
        let ragged = b"a,b\n\"x\n1,2\n3\",4\n5\n";
        for every in 1..ragged.len() {
            assert_eq!(
                segmented(ragged, every),
                sequential(ragged),
                "every {every}"
            );
        }
    }

    #[test]
    fn quote_free_rows_are_counted_from_flag_words() {
        // Line ends of every kind, blank lines, a last row without a line end, rows across blocks.
        let mut rows = b"1,2,3\r\n\n4,5,6\r7,8,9\n\r\n".to_vec();
        for row in 0..40 {
            rows.extend_from_slice(format!("{row},{},long field {row}\n", row * 3).as_bytes());
        }
        rows.extend_from_slice(b"x,y,z");
        assert!(quote_free_rows_match(&rows, 3));
        assert!(!quote_free_rows_match(&rows, 2));
        assert!(quote_free_rows_match(b"", 3));
        assert!(quote_free_rows_match(b"\n\r\n", 3));
        rows.extend_from_slice(b",w");
        assert!(!quote_free_rows_match(&rows, 3));
        // A quote anywhere, even in rows that match, leaves the answer to the reader.
        assert!(!quote_free_rows_match(b"1,2\n\"3\",4\n", 2));
        assert!(!quote_free_rows_match(b"1,2\n3,4\n5,\"6\"", 2));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Without quotes (the check by flag words), cut anywhere, the answers are the `csv`
        /// crate's.
        #[test]
        fn quote_free_segments_agree_with_reading_front_to_back(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just(&b"a"[..]), Just(&b","[..]), Just(&b"\n"[..]), Just(&b"\r"[..]),
                    Just(&b"\r\n"[..]), Just(&b"x,y"[..]), Just(&b"1,2,3\n"[..]),
                    Just(&b"0123456789abcdef0123456789abcdef"[..]), Just(BYTE_ORDER_MARK),
                ],
                0..120,
            ),
            every in 1usize..200,
        ) {
            let bytes: Vec<u8> = pieces.concat();
            prop_assert_eq!(segmented(&bytes, every), sequential(&bytes));
        }

        /// Cut anywhere, the segmented check agrees with the `csv` crate read front to back, on
        /// text made of the characters that matter (separators, quotes, line ends, a byte order
        /// mark's bytes).
        #[test]
        fn segments_agree_with_reading_front_to_back(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just(&b"a"[..]), Just(&b","[..]), Just(&b"\""[..]), Just(&b"\n"[..]),
                    Just(&b"\r"[..]), Just(&b"\r\n"[..]), Just(&b"x,y"[..]), Just(BYTE_ORDER_MARK),
                ],
                0..80,
            ),
            every in 1usize..24,
        ) {
            let bytes: Vec<u8> = pieces.concat();
            prop_assert_eq!(segmented(&bytes, every), sequential(&bytes));
        }

        /// The same on files shaped like real ones: rows of three fields, some quoted with
        /// separators, quotes and line ends inside, `\n` or `\r\n` line ends, blank lines, and
        /// perhaps one row with another number of fields.
        #[test]
        fn segments_agree_on_rows_with_quoted_fields(
            rows in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        prop_oneof![
                            Just(&b"12"[..]), Just(&b""[..]), Just(&b"\"a,b\""[..]),
                            Just(&b"\"x\ny\""[..]), Just(&b"\"q\"\"\r\n\""[..]),
                        ],
                        3,
                    ),
                    prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\n\n"[..])],
                ),
                1..40,
            ),
            ragged in proptest::option::of((0usize..40, 1usize..5)),
            every in 1usize..64,
        ) {
            let mut bytes = b"h1,h2,h3\n".to_vec();
            for (index, (fields, end)) in rows.iter().enumerate() {
                let count = match ragged {
                    Some((at, count)) if at == index => count,
                    _ => 3,
                };
                let row: Vec<&[u8]> = (0..count).map(|field| fields[field % 3]).collect();
                bytes.extend_from_slice(&row.join(&b","[..]));
                bytes.extend_from_slice(end);
            }
            prop_assert_eq!(segmented(&bytes, every), sequential(&bytes));
        }
    }
}
