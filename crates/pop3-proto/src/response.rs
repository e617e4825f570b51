//! Single-line responses: `+OK` and `-ERR`, with the extended response codes of RFC 2449
//! section 8 (`[IN-USE]`, `[LOGIN-DELAY]`) and RFC 3206 (`[SYS/TEMP]`, `[SYS/PERM]`,
//! `[AUTH]`). A client that announced nothing still gets the codes: RFC 2449 makes them
//! part of the text, which old clients show as is.

/// `+OK` or `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Err,
}

/// An extended response code, sent in brackets right after `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The credentials were wrong, or may not be used here (RFC 3206 section 5).
    Auth,
    /// A temporary problem on the server: trying again later may work.
    SysTemp,
    /// A permanent problem on the server: trying again will not help.
    SysPerm,
    /// The maildrop is locked by another session (RFC 2449 section 8.1.1).
    InUse,
    /// The user logged in too recently (RFC 2449 section 8.1.2).
    LoginDelay,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Auth => "AUTH",
            Code::SysTemp => "SYS/TEMP",
            Code::SysPerm => "SYS/PERM",
            Code::InUse => "IN-USE",
            Code::LoginDelay => "LOGIN-DELAY",
        }
    }
}

/// One status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub code: Option<Code>,
    pub text: String,
}

impl Response {
    pub fn ok(text: impl Into<String>) -> Response {
        Response {
            status: Status::Ok,
            code: None,
            text: text.into(),
        }
    }

    pub fn err(text: impl Into<String>) -> Response {
        Response {
            status: Status::Err,
            code: None,
            text: text.into(),
        }
    }

    pub fn with_code(mut self, code: Code) -> Response {
        self.code = Some(code);
        self
    }

    /// Appends the line, CRLF included. A CR or LF in the text becomes a space, so no
    /// text (an error message quoting input, say) can forge a second line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.status {
            Status::Ok => b"+OK",
            Status::Err => b"-ERR",
        });
        if let Some(code) = self.code {
            out.extend_from_slice(b" [");
            out.extend_from_slice(code.as_str().as_bytes());
            out.push(b']');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            out.extend(
                self.text
                    .bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        let cases = [
            (Response::ok("2 320"), "+OK 2 320\r\n"),
            (Response::ok(""), "+OK\r\n"),
            (Response::err("no such message"), "-ERR no such message\r\n"),
            (
                Response::err("invalid password").with_code(Code::Auth),
                "-ERR [AUTH] invalid password\r\n",
            ),
            (
                Response::err("try later").with_code(Code::SysTemp),
                "-ERR [SYS/TEMP] try later\r\n",
            ),
            (
                Response::err("broken").with_code(Code::SysPerm),
                "-ERR [SYS/PERM] broken\r\n",
            ),
            (
                Response::err("locked").with_code(Code::InUse),
                "-ERR [IN-USE] locked\r\n",
            ),
            (
                Response::err("wait").with_code(Code::LoginDelay),
                "-ERR [LOGIN-DELAY] wait\r\n",
            ),
            (Response::err("a\r\n+OK b"), "-ERR a  +OK b\r\n"),
        ];
        for (response, want) in cases {
            let mut out = Vec::new();
            response.encode(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
