//! One message over lettre's SMTP connection in two round trips instead of
//! four, where the relay allows it.
//!
//! A relay that offers `PIPELINING` (RFC 2920: Postfix, Exim and the
//! large sending services do) takes `MAIL`, `RCPT` and `DATA` in one write,
//! answering each in turn; the message itself follows once `DATA` is
//! answered with 354. lettre's own [`AsyncSmtpConnection::send`] waits for
//! each reply before the next command and copies the message byte by byte
//! to double a `.` that begins a line. Here lettre still opens the
//! connection, speaks TLS and the login, writes the commands as its
//! [`Mail`], [`Rcpt`] and [`Data`] print them (its `command` writes what
//! a value prints: here the commands together, then the message) and reads
//! every reply ([`AsyncSmtpConnection::command`],
//! [`AsyncSmtpConnection::read_response`]);
//! only the grouping and the `.`-doubling (a search for `CRLF.`, not a
//! walk over every byte) are ours. The bytes on the wire are the same as
//! lettre's, in fewer writes.
//!
//! A message or an address that is not ASCII (which needs `8BITMIME` or
//! `SMTPUTF8` named in `MAIL`) goes through lettre's `send` unchanged.

use std::fmt::Write as _;

use lettre::address::Envelope;
use lettre::transport::smtp::Error;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

/// Asks the server for its extensions again (`EHLO`; lettre keeps only
/// those it uses itself) and says whether `PIPELINING` is among them. A
/// server that refuses to be asked twice is taken not to offer it (a
/// refused `EHLO` leaves the session as it was); a connection that fails
/// meanwhile is an error.
pub(crate) async fn offered(
    conn: &mut AsyncSmtpConnection,
    hello: &ClientId,
) -> Result<bool, Error> {
    let reply = match conn.command(Ehlo::new(hello.clone())).await {
        Ok(reply) => reply,
        Err(e) if e.status().is_some() => return Ok(false),
        Err(e) => return Err(e),
    };
    // The first line is the server's name; each other line an extension.
    Ok(reply.message().skip(1).any(|line| {
        line.split_ascii_whitespace()
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
    }))
}

/// Sends `email` to the envelope's recipients over `conn`, whose server
/// offers `PIPELINING`: `MAIL`, each `RCPT` and `DATA` in one write, their
/// replies read in order, then the message and its closing `.` in one
/// write. The first reply that is not positive ends the transaction with
/// that reply's error, and, as lettre does after a failed transaction,
/// the connection is closed (the replies still on their way are not
/// waited for).
pub(crate) async fn send(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    email: &[u8],
) -> Result<Response, Error> {
    let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
    let addresses_ascii = envelope.from().is_none_or(ascii) && envelope.to().iter().all(ascii);
    let Some(data) = transparent(email).filter(|_| addresses_ascii) else {
        return conn.send(envelope, email).await;
    };
    let mut commands = Mail::new(envelope.from().cloned(), Vec::new()).to_string();
    for to in envelope.to() {
        write!(commands, "{}", Rcpt::new(to.clone(), Vec::new())).expect("a String takes it");
    }
    write!(commands, "{Data}").expect("a String takes it");
    let sent = async {
        // MAIL's reply, then one for each RCPT, then DATA's 354.
        conn.command(commands.as_str()).await?;
        for _ in envelope.to() {
            conn.read_response().await?;
        }
        conn.read_response().await?;
        conn.command(data.as_str()).await
    }
    .await;
    if sent.is_err() {
        conn.abort().await;
    }
    sent
}

/// The message as the data phase carries it (RFC 5321, 4.5.2): every `.`
/// that begins a line (the first byte, or one after CRLF) doubled, and
/// the closing `CRLF.CRLF` after it, as lettre writes it. `None` when the
/// message is not ASCII.
pub(crate) fn transparent(email: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(email).ok().filter(|t| t.is_ascii())?;
    let mut out = String::with_capacity(email.len() + email.len() / 256 + 8);
    if text.starts_with('.') {
        out.push('.');
    }
    let mut from = 0;
    for at in memchr::memmem::find_iter(email, b"\r\n.") {
        // Up to and with the `.`, then the `.` again.
        out.push_str(&text[from..at + 3]);
        out.push('.');
        from = at + 3;
    }
    out.push_str(&text[from..]);
    out.push_str("\r\n.\r\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::transparent;

    fn stuffed(s: &str) -> String {
        transparent(s.as_bytes()).unwrap()
    }

    #[test]
    fn a_dot_that_begins_a_line_is_doubled_and_no_other() {
        assert_eq!(stuffed("a"), "a\r\n.\r\n");
        assert_eq!(stuffed(".a"), "..a\r\n.\r\n");
        assert_eq!(stuffed("a\r\n.b"), "a\r\n..b\r\n.\r\n");
        assert_eq!(stuffed("a\r\n..b"), "a\r\n...b\r\n.\r\n");
        assert_eq!(stuffed("a\r\n.\r\n.b"), "a\r\n..\r\n..b\r\n.\r\n");
        assert_eq!(stuffed("a\r\r\n.b"), "a\r\r\n..b\r\n.\r\n");
        // Only CRLF ends a line in SMTP: a bare LF or CR does not.
        assert_eq!(stuffed("a\n.b\r.c"), "a\n.b\r.c\r\n.\r\n");
        assert_eq!(stuffed("a.b\r\n"), "a.b\r\n\r\n.\r\n");
        assert_eq!(stuffed(""), "\r\n.\r\n");
    }

    #[test]
    fn a_message_that_is_not_ascii_is_left_to_lettre() {
        assert_eq!(transparent("Malmö".as_bytes()), None);
        assert_eq!(transparent(&[b'a', 0xff]), None);
    }
}
