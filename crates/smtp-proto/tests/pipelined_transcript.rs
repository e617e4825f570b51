//! A whole pipelined LMTP transaction as the session will drive it: lines found with
//! `find_line`, parsed with `parse_command`, and the message read with `DataDecoder`
//! from the same buffer, so the commands after the terminator stay in place.

use evermail_smtp_proto::{
    Command, DataDecoder, Feed, ForwardPath, LineScan, ReversePath, find_line, parse_command,
};

#[test]
fn pipelined_transaction_in_one_buffer() {
    let wire: &[u8] = b"LHLO mx.example\r\n\
        MAIL FROM:<sender@example.org> SIZE=20 BODY=8BITMIME\r\n\
        RCPT TO:<alice@example.com>\r\n\
        RCPT TO:<Postmaster>\r\n\
        DATA\r\n\
        Subject: t\r\n\r\n..hidden\r\n.\r\n\
        QUIT\r\n";
    let mut buf = wire;
    let mut commands = Vec::new();
    let mut message = Vec::new();
    while !buf.is_empty() {
        let LineScan::Line(len) = find_line(buf, 512) else {
            panic!("incomplete line in {buf:?}");
        };
        let command = parse_command(&buf[..len]).unwrap();
        buf = &buf[len..];
        if command == Command::Data {
            let mut decoder = DataDecoder::new(1000);
            match decoder.feed(buf, &mut message) {
                Feed::Done {
                    consumed,
                    oversize: false,
                } => buf = &buf[consumed..],
                other => panic!("unexpected {other:?}"),
            }
        }
        commands.push(command);
    }
    assert_eq!(message, b"Subject: t\r\n\r\n.hidden\r\n");
    assert_eq!(commands.len(), 6);
    match &commands[1] {
        Command::Mail(mail) => {
            assert!(matches!(mail.reverse_path, ReversePath::Mailbox(_)));
            assert_eq!(mail.size, Some(20));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &commands[3],
        Command::Rcpt(r) if r.forward_path == ForwardPath::Postmaster
    ));
    assert_eq!(commands[5], Command::Quit);
}

#[test]
fn too_long_line_is_refused_then_skipped() {
    let mut wire = vec![b'X'; 600];
    wire.extend_from_slice(b"\r\nNOOP\r\n");
    assert_eq!(find_line(&wire, 512), LineScan::TooLong);
    // The session discards up to the next LF and carries on.
    let LineScan::Line(skip) = find_line(&wire, usize::MAX) else {
        panic!()
    };
    let rest = &wire[skip..];
    assert_eq!(find_line(rest, 512), LineScan::Line(6));
    assert_eq!(parse_command(&rest[..6]), Ok(Command::Noop));
}
