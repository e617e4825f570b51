//! Arbitrary bytes never panic the parser, every answer consumes what it says it does,
//! and whatever the encoder writes is read back by a client as the same lines.

use evermail_pop3_proto::{
    MAX_LINE, Parse, encode_multiline, parse_command, parse_sasl_response, top_of,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let mut rest: &[u8] = &input;
        // Drive it as a session would: consume until the parser asks for more.
        loop {
            match parse_command(rest) {
                Parse::Complete { consumed, .. } | Parse::Error { consumed, .. } => {
                    prop_assert!(consumed > 0 && consumed <= rest.len());
                    rest = &rest[consumed..];
                }
                Parse::Incomplete => {
                    prop_assert!(rest.len() < MAX_LINE);
                    break;
                }
            }
        }
        let _ = parse_sasl_response(&input, 600);
        let _ = top_of(&input, 3);
    }

    #[test]
    fn command_shaped_input_never_panics(
        keyword in "(USER|PASS|APOP|AUTH|QUIT|STAT|LIST|RETR|DELE|NOOP|RSET|TOP|UIDL|CAPA|STLS|user|Top)",
        args in proptest::collection::vec("[ -~]{0,12}", 0..4),
    ) {
        let line = format!("{keyword} {}\r\n", args.join(" "));
        match parse_command(line.as_bytes()) {
            Parse::Complete { consumed, .. } | Parse::Error { consumed, .. } => {
                prop_assert_eq!(consumed, line.len());
            }
            Parse::Incomplete => prop_assert!(false, "incomplete: {line:?}"),
        }
    }

    #[test]
    fn stuffed_body_unstuffs_to_the_same_lines(lines in proptest::collection::vec("[.a-z ]{0,6}", 0..10)) {
        let body: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        let mut out = Vec::new();
        encode_multiline(body.as_bytes(), &mut out);
        let text = String::from_utf8(out).unwrap();
        // A client (RFC 1939 section 3) reads lines until a lone ".", unstuffing.
        let mut read = Vec::new();
        let mut ended = false;
        for line in text.split_terminator("\r\n") {
            prop_assert!(!ended, "data after the terminator");
            if line == "." {
                ended = true;
                continue;
            }
            read.push(line.strip_prefix('.').unwrap_or(line).to_string());
        }
        prop_assert!(ended);
        prop_assert_eq!(read, lines);
    }
}
