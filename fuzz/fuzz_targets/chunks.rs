//! The large-value layout: any stored bytes decode without panicking; a
//! decoded manifest encodes back to the same bytes; values that start like a
//! manifest round-trip through their inline form; guest keys and hidden keys
//! never meet, and chunk keys parse back to what made them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasikv_core::chunks::{self, Stored, WriteId};

fuzz_target!(|data: &[u8]| {
    match chunks::decode(data) {
        Ok(Stored::Plain(v)) => assert!(!chunks::needs_escape(v) && v == data),
        Ok(Stored::Inline(v)) => assert_eq!(chunks::inline(v), data),
        Ok(Stored::Chunked(m)) => {
            assert_eq!(m.encode(), data);
            assert!(m.chunk_bytes > 0);
            let total: u64 = (0..m.chunks().min(1000))
                .map(|i| m.chunk_len(i) as u64)
                .sum();
            if m.chunks() <= 1000 {
                assert_eq!(total, m.len);
            }
        }
        Err(_) => assert!(chunks::needs_escape(data)),
    }
    if chunks::needs_escape(data) {
        assert_eq!(
            chunks::decode(&chunks::inline(data)),
            Ok(Stored::Inline(data))
        );
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As a guest key: stored, it reads back and is never hidden.
    let stored = chunks::stored_key(text);
    assert_eq!(chunks::guest_key(&stored), Some(text));
    assert!(chunks::parse_chunk_key(&stored).is_none());
    // As a stored key: a guest's key or a hidden one, never both.
    if let Some(guest) = chunks::guest_key(text) {
        assert_eq!(chunks::stored_key(guest), text);
    }
    if let Some(chunk) = chunks::parse_chunk_key(text) {
        assert_eq!(chunks::guest_key(text), None);
        assert_eq!(chunks::chunk_key(&chunk.id, chunk.index, chunk.key), text);
    }
    let id = WriteId {
        created_ms: data.len() as u64,
        random: u64::from(data.first().copied().unwrap_or(0)),
    };
    let key = chunks::chunk_key(&id, data.len() as u64, text);
    let parsed = chunks::parse_chunk_key(&key).expect("a chunk key parses");
    assert_eq!(
        (parsed.id, parsed.index, parsed.key),
        (id, data.len() as u64, text)
    );
});
