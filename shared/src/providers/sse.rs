//! A tolerant, bounded reader of server-sent events.
//!
//! Accepts `\n`, `\r\n` and `\r` line endings, `data:` with or without a space, multi-line data,
//! comments and `event:` fields. Invalid UTF-8 is replaced, never fatal. A line longer than the bound
//! is an error, so a hostile upstream cannot make the gateway buffer without limit.

/// One event: its optional `event:` name and its data lines joined by `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("an SSE line exceeded {0} bytes")]
pub struct SseTooLarge(pub usize);

/// Incremental parser: push bytes as they arrive, take the complete events.
#[derive(Debug)]
pub struct SseParser {
    buffer: Vec<u8>,
    max_line_bytes: usize,
    event: Option<String>,
    data: Vec<String>,
    data_bytes: usize,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    pending_cr: bool,
}

impl SseParser {
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            buffer: Vec::new(),
            max_line_bytes,
            event: None,
            data: Vec::new(),
            data_bytes: 0,
            pending_cr: false,
        }
    }

    /// Feeds bytes; returns the events they completed.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<SseEvent>, SseTooLarge> {
        let mut events = Vec::new();
        if bytes.is_empty() {
            // An empty chunk says nothing about a `\r` that ended the previous one.
            return Ok(events);
        }
        if self.pending_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.pending_cr = false;
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\n' || b == b'\r' {
                self.buffer.extend_from_slice(&bytes[start..i]);
                let line = std::mem::take(&mut self.buffer);
                self.line(&line, &mut events)?;
                if b == b'\r' {
                    if i + 1 < bytes.len() {
                        if bytes[i + 1] == b'\n' {
                            i += 1;
                        }
                    } else {
                        self.pending_cr = true;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        self.buffer.extend_from_slice(&bytes[start..]);
        if self.buffer.len() > self.max_line_bytes {
            return Err(SseTooLarge(self.max_line_bytes));
        }
        Ok(events)
    }

    /// The stream ended: an event left without its blank line still counts.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut events = Vec::new();
        if !self.buffer.is_empty() {
            let line = std::mem::take(&mut self.buffer);
            let _ = self.line(&line, &mut events);
        }
        let _ = self.line(b"", &mut events);
        events.pop()
    }

    fn line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        if line.is_empty() {
            if !self.data.is_empty() {
                events.push(SseEvent {
                    event: self.event.take(),
                    data: self.data.join("\n"),
                });
            }
            self.event = None;
            self.data.clear();
            self.data_bytes = 0;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(at) => {
                let value = &text[at + 1..];
                (&text[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => {
                // Each line after the first also costs the `\n` that joins it, so a flood of empty
                // `data:` lines is bounded too.
                self.data_bytes += value.len() + usize::from(!self.data.is_empty());
                if self.data_bytes > self.max_line_bytes {
                    return Err(SseTooLarge(self.max_line_bytes));
                }
                self.data.push(value.to_string());
            }
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_chunk_between_cr_and_lf_does_not_end_the_event() {
        let mut parser = SseParser::new(1024);
        let mut events = parser.push(b"data: a\r").unwrap();
        events.extend(parser.push(b"").unwrap());
        events.extend(parser.push(b"\ndata: b\n\n").unwrap());
        assert_eq!(
            events,
            vec![SseEvent {
                event: None,
                data: "a\nb".into()
            }]
        );
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new(1024);
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(parser.push(chunk).unwrap());
        }
        out.extend(parser.finish());
        out
    }

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn events_split_anywhere_and_in_any_line_ending_are_reassembled() {
        let events = parse_all(&[
            b"data: {\"a\"",
            b":1}\r",
            b"\n\r\ndata:two\r\rdata: three\n\n",
        ]);
        assert_eq!(data(&events), vec!["{\"a\":1}", "two", "three"]);
    }

    #[test]
    fn comments_event_names_and_multi_line_data_are_understood() {
        let events = parse_all(&[b": keep-alive\n\nevent: error\ndata: a\ndata: b\n\n"]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event.as_deref(), Some("error"));
        assert_eq!(events[0].data, "a\nb");
    }

    #[test]
    fn a_last_event_without_its_blank_line_is_kept() {
        assert_eq!(data(&parse_all(&[b"data: [DONE]"])), vec!["[DONE]"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let events = parse_all(&[b"data: caf\xff\n\n"]);
        assert_eq!(events[0].data, "caf\u{fffd}");
    }

    #[test]
    fn a_flood_of_empty_data_lines_is_refused_within_the_bound() {
        let mut parser = SseParser::new(16);
        assert!(parser.push(b"data: 0123456789\n").is_ok());
        assert_eq!(parser.push(&b"data:\n".repeat(10)), Err(SseTooLarge(16)));
        let mut parser = SseParser::new(1024);
        assert_eq!(
            parser.push(&b"data:\n".repeat(100_000)),
            Err(SseTooLarge(1024))
        );
    }

    #[test]
    fn an_endless_line_is_refused_within_the_bound() {
        let mut parser = SseParser::new(16);
        assert!(parser.push(b"data: 0123456789").is_ok());
        assert_eq!(parser.push(b"0123456789"), Err(SseTooLarge(16)));
    }
}
