//! Property tests: arbitrary bytes never make the parser or decoders panic, and the
//! decoders never claim more input or produce more output than they should. Case
//! counts are modest so the suite runs in seconds.

use evermail_smtp_proto::{
    BdatBody, BdatFeed, DataDecoder, Feed, LineScan, Reply, find_line, parse_command,
};
use proptest::prelude::*;

/// Bytes biased toward the ones that matter to the state machines.
fn protocol_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(b'\r'),
            4 => Just(b'\n'),
            4 => Just(b'.'),
            2 => Just(b' '),
            2 => Just(b'<'),
            2 => Just(b'>'),
            2 => Just(b'@'),
            2 => Just(b':'),
            1 => Just(b'"'),
            6 => any::<u8>(),
        ],
        0..max_len,
    )
}

fn command_lines() -> impl Strategy<Value = Vec<u8>> {
    let verbs = prop::sample::select(vec![
        "LHLO ",
        "MAIL FROM:",
        "RCPT TO:",
        "BDAT ",
        "DATA",
        "VRFY ",
        "mail from: ",
        "",
    ]);
    (verbs, protocol_bytes(80)).prop_map(|(verb, tail)| {
        let mut line = verb.as_bytes().to_vec();
        line.extend(tail);
        line
    })
}

proptest! {
    // 500 cases keep the suite at a few seconds in a debug build; failures are saved
    // beside this file so a found case is replayed first next time.
    #![proptest_config(ProptestConfig {
        cases: 500,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn parse_command_never_panics(line in command_lines()) {
        if let Err(error) = parse_command(&line) {
            // Every error maps to a reply that encodes to a single clean line.
            let bytes = Reply::for_error(&error).to_bytes();
            prop_assert!(bytes.ends_with(b"\r\n"));
            prop_assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        }
    }

    #[test]
    fn find_line_stays_within_limit(buf in protocol_bytes(64), max in 0usize..80) {
        match find_line(&buf, max) {
            LineScan::Line(len) => {
                prop_assert!(len <= max && len <= buf.len());
                prop_assert_eq!(buf[len - 1], b'\n');
                prop_assert!(!buf[..len - 1].contains(&b'\n'));
            }
            LineScan::Incomplete => prop_assert!(buf.len() < max && !buf.contains(&b'\n')),
            LineScan::TooLong => prop_assert!(buf.len() >= max && !buf[..max].contains(&b'\n')),
        }
    }

    #[test]
    fn data_decoder_is_bounded_and_split_invariant(
        input in protocol_bytes(300),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        max in 0u64..200,
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(input.len());

        let mut one_shot_out = Vec::new();
        let one_shot = DataDecoder::new(max).feed(&input, &mut one_shot_out);

        let mut decoder = DataDecoder::new(max);
        let mut out = Vec::new();
        let (mut start, mut total, mut last) = (0, 0, Feed::NeedMore { consumed: 0 });
        for end in cuts {
            let part = &input[start..end];
            last = decoder.feed(part, &mut out);
            match last {
                Feed::NeedMore { consumed } => {
                    prop_assert_eq!(consumed, part.len());
                    total += consumed;
                }
                Feed::Done { consumed, .. } => {
                    prop_assert!(consumed <= part.len());
                    total += consumed;
                    break;
                }
            }
            start = end;
        }
        prop_assert!(out.len() as u64 <= max);
        // Output can at most double (every bare LF becomes CRLF).
        prop_assert!(out.len() <= 2 * total);
        prop_assert_eq!(&out, &one_shot_out);
        match (last, one_shot) {
            (Feed::Done { oversize, .. }, Feed::Done { consumed, oversize: o }) => {
                prop_assert_eq!(total, consumed);
                prop_assert_eq!(oversize, o);
            }
            (Feed::NeedMore { .. }, Feed::NeedMore { consumed }) => {
                prop_assert_eq!(total, consumed);
            }
            (a, b) => prop_assert!(false, "split {:?} vs one-shot {:?}", a, b),
        }
    }

    #[test]
    fn bdat_body_is_bounded(
        chunks in prop::collection::vec((0u64..50, any::<bool>()), 1..5),
        input in protocol_bytes(200),
        max in 0u64..100,
    ) {
        let mut body = BdatBody::new(max);
        let mut out = Vec::new();
        let mut pos = 0;
        // The input is one connection's worth of bytes: each chunk takes its share
        // and the session stops at the first chunk the input does not complete.
        for (size, last) in chunks {
            body.begin_chunk(size, last);
            match body.feed(&input[pos..], &mut out) {
                BdatFeed::NeedMore { consumed } => {
                    prop_assert_eq!(consumed, input.len() - pos);
                    break;
                }
                BdatFeed::ChunkDone { consumed, .. } => {
                    pos += consumed;
                    prop_assert!(pos <= input.len());
                }
            }
        }
        prop_assert!(out.len() as u64 <= max);
        prop_assert_eq!(&out[..], &input[..out.len()]);
    }
}
