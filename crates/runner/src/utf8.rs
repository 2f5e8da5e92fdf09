//! UTF-8 framing for the JSON path: bytes in, text out, never splitting a character.

/// Turns a byte stream into text chunks. A multi-byte character split across two reads is
/// held back until its end arrives; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    carry: Vec<u8>,
}

impl Utf8Stream {
    /// Decodes `bytes` after whatever was carried over from the previous call.
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> String {
        let mut input = std::mem::take(&mut self.carry);
        input.extend_from_slice(bytes);
        let mut out = String::with_capacity(input.len());
        let mut rest = &input[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).expect("checked valid"));
                    match e.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            // An incomplete character at the end: wait for the rest.
                            self.carry = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// Bytes of a partial character held back from the last call (0 to 3): they start the
    /// next call's text.
    pub(crate) fn pending(&self) -> usize {
        self.carry.len()
    }

    /// Flushes a dangling partial character at the end of the stream.
    pub(crate) fn finish(&mut self) -> String {
        if self.carry.is_empty() {
            String::new()
        } else {
            self.carry.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_are_joined_and_bad_bytes_replaced() {
        let text = "héllo → 世界 🎉";
        let bytes = text.as_bytes();
        // Every split point gives the same text back.
        for cut in 0..=bytes.len() {
            let mut s = Utf8Stream::default();
            let joined = s.decode(&bytes[..cut]) + &s.decode(&bytes[cut..]) + &s.finish();
            assert_eq!(joined, text, "cut at {cut}");
        }
        let mut s = Utf8Stream::default();
        assert_eq!(s.decode(b"a\xffb\xc3"), "a\u{fffd}b");
        assert_eq!(s.finish(), "\u{fffd}");
        // One byte at a time.
        let mut s = Utf8Stream::default();
        let out: String = bytes.iter().map(|b| s.decode(&[*b])).collect();
        assert_eq!(out, text);
    }
}
