//! Answers captured from the kernel, fed whole, in every prefix and back to back; the collector
//! over scripted answers; the writer's framing.

use expect_test::{Expect, expect};

use super::*;

/// `ip rule add …`: an acknowledgement (`NLM_F_CAPPED`: only the request's header echoed).
const RULE_ACK: &[u8] = include_bytes!("../testdata/route_rule_ack.bin");
/// The same rule again: `EEXIST`, with the whole request echoed.
const RULE_EEXIST: &[u8] = include_bytes!("../testdata/route_rule_eexist.bin");
/// `ip -6 route replace … dev lo` with `lo` down: `ENETDOWN` plus an extended-ack message.
const ROUTE_ENETDOWN: &[u8] = include_bytes!("../testdata/route_enetdown_ext_ack.bin");
/// nf_tables: `delete table inet nope` refused with `ENOENT`, with an extended-ack offset.
const NFT_ENOENT: &[u8] = include_bytes!("../testdata/nft_enoent_ext_ack.bin");
/// nf_tables: the acknowledgements of a 4-message gate batch from our own `commit`.
const NFT_ACKS: &[u8] = include_bytes!("../testdata/nft_gate_acks.bin");

fn check(answer: &[u8], expect: Expect) {
    let parsed = match parse_answer(answer) {
        Ok(Some((answer, used))) => format!("{answer:?} used {used}"),
        other => format!("{other:?}"),
    };
    expect.assert_eq(&parsed);
}

#[test]
fn captured_answers() {
    check(RULE_ACK, expect!["Ack { seq: 1795451743 } used 36"]);
    check(RULE_EEXIST, expect!["Error { seq: 1795451743, errno: 17 } used 64"]);
    check(ROUTE_ENETDOWN, expect!["Error { seq: 1795451743, errno: 100 } used 108"]);
    check(NFT_ENOENT, expect!["Error { seq: 1, errno: 2 } used 60"]);
    let acks = parse_datagrams(NFT_ACKS);
    expect![[r#"[Ack { seq: 2 }, Ack { seq: 3 }]"#]].assert_eq(&format!("{acks:?}"));
}

/// Splits back-to-back datagrams the way they were captured (each a whole message here).
fn parse_datagrams(mut bytes: &[u8]) -> Vec<Answer> {
    let mut answers = Vec::new();
    while let Some((answer, used)) = parse_answer(bytes).unwrap() {
        answers.push(answer);
        bytes = &bytes[used..];
    }
    assert!(bytes.is_empty());
    answers
}

/// STYLE habit 9: every prefix is "incomplete", never an error or a wrong answer.
#[test]
fn every_prefix_is_incomplete() {
    for answer in [RULE_ACK, RULE_EEXIST, ROUTE_ENETDOWN, NFT_ENOENT, NFT_ACKS] {
        let (_, used) = parse_answer(answer).unwrap().unwrap();
        for len in 0..used.min(answer.len()) {
            let prefix = &answer[..len];
            let message_len = u32::from_ne_bytes(answer[..4].try_into().unwrap()) as usize;
            if len >= message_len {
                // Only padding is missing: the message itself is whole.
                assert!(parse_answer(prefix).unwrap().is_some());
            } else {
                assert_eq!(parse_answer(prefix), Ok(None), "prefix of {len} bytes");
            }
        }
    }
}

/// A datagram holding several answers yields them all; one cut short is an error.
#[test]
fn datagrams() {
    let mut two = RULE_ACK.to_vec();
    two.extend_from_slice(NFT_ENOENT);
    expect!["Ok([Ack { seq: 1795451743 }, Error { seq: 1, errno: 2 }])"]
        .assert_eq(&format!("{:?}", parse_datagram(&two)));
    for cut in 1..two.len() {
        if cut == RULE_ACK.len() {
            continue;
        }
        assert_eq!(parse_datagram(&two[..cut]), Err(MalformedAnswer::Truncated), "cut at {cut}");
    }
    assert_eq!(parse_datagram(&[]), Ok(Vec::new()));
}

#[test]
fn malformed_answers() {
    let mut short_len = RULE_ACK.to_vec();
    short_len[..4].copy_from_slice(&15u32.to_ne_bytes());
    assert_eq!(parse_answer(&short_len), Err(MalformedAnswer::Length(15)));

    let mut no_code = RULE_ACK[..18].to_vec();
    no_code[..4].copy_from_slice(&18u32.to_ne_bytes());
    assert_eq!(parse_answer(&no_code), Err(MalformedAnswer::ShortError(18)));

    // Not an error message: reported as such, for the caller to skip.
    let mut done = RULE_ACK.to_vec();
    done[4..6].copy_from_slice(&3u16.to_ne_bytes());
    let seq = u32::from_ne_bytes(RULE_ACK[8..12].try_into().unwrap());
    assert_eq!(parse_answer(&done), Ok(Some((Answer::Other { seq, kind: 3 }, 36))));
}

// === Collector ===

fn run(collector: &mut Collector, answers: &[Answer]) -> Vec<Progress> {
    answers.iter().map(|answer| collector.feed(*answer)).collect()
}

#[test]
fn settles_when_every_message_is_answered() {
    let mut c = Collector::new([2, 3, 4], Some(1));
    let progress = run(&mut c, &[Answer::Ack { seq: 3 }, Answer::Ack { seq: 2 }]);
    assert_eq!(progress, [Progress::Waiting, Progress::Waiting]);
    assert_eq!(c.pending().collect::<Vec<_>>(), [4]);
    assert_eq!(c.feed(Answer::Ack { seq: 4 }), Progress::Settled(Ok(())));
}

/// nf_tables answers every message of a refused batch; the lowest refusal is the cause.
#[test]
fn reports_the_first_refusal() {
    let mut c = Collector::new([2, 3, 4, 5], Some(1));
    let answers = [
        Answer::Ack { seq: 2 },
        Answer::Error { seq: 5, errno: 2 },
        Answer::Error { seq: 4, errno: 95 },
        Answer::Other { seq: 0, kind: 3 },
        Answer::Ack { seq: 99 },
    ];
    let progress = run(&mut c, &answers);
    assert!(progress.iter().all(|p| *p == Progress::Waiting), "{progress:?}");
    assert_eq!(c.refusal(), Some(Refusal { seq: 4, errno: 95 }));
    assert_eq!(
        c.feed(Answer::Ack { seq: 3 }),
        Progress::Settled(Err(Refusal { seq: 4, errno: 95 }))
    );
}

/// An error about the batch as a whole (say `EPERM`) may be all that comes.
#[test]
fn a_batch_error_settles_at_once() {
    let mut c = Collector::new([2, 3], Some(1));
    assert_eq!(
        c.feed(Answer::Error { seq: 1, errno: 1 }),
        Progress::Settled(Err(Refusal { seq: 1, errno: 1 }))
    );
    // Without a batch, the same sequence number is just a message.
    let mut c = Collector::new([1], None);
    assert_eq!(
        c.feed(Answer::Error { seq: 1, errno: 17 }),
        Progress::Settled(Err(Refusal { seq: 1, errno: 17 }))
    );
}

// === Writer ===

#[test]
fn writer_frames_and_pads() {
    let mut w = Writer::default();
    w.message(0x0a06, NLM_F_REQUEST | NLM_F_ACK, 7, |w| {
        w.raw(&[1, 0, 0, 0]);
        w.attr_str(1, "wharf");
        w.nested(4, |w| {
            w.attr(1, &[0xaa]);
            w.attr_u32_be(2, 0x0102_0304);
            w.attr_u32_ne(3, 0x0102_0304);
        });
    });
    let bytes = w.finish();
    let hex: Vec<String> = bytes.chunks(4).map(|c| format!("{c:02x?}")).collect();
    expect![[r#"
        [3c, 00, 00, 00]
        [06, 0a, 05, 00]
        [07, 00, 00, 00]
        [00, 00, 00, 00]
        [01, 00, 00, 00]
        [0a, 00, 01, 00]
        [77, 68, 61, 72]
        [66, 00, 00, 00]
        [1c, 00, 04, 80]
        [05, 00, 01, 00]
        [aa, 00, 00, 00]
        [08, 00, 02, 00]
        [01, 02, 03, 04]
        [08, 00, 03, 00]
        [04, 03, 02, 01]"#]]
    .assert_eq(&hex.join("\n"));
}
