//! The orderings of RFC 5256 that SORT and THREAD share: the base subject (section
//! 2.1), and the two threading algorithms (section 3) over plain values, so they are
//! tested without a session.

use std::collections::HashMap;

use evermail_imap_proto::response::ThreadTree;

/// The base subject, lower-cased for comparison, and whether extracting it removed
/// a reply or forward marker (`Re:`, `Fwd:`, `(fwd)`, `[fwd: ...]`).
pub(crate) fn base_subject(subject: &str) -> (String, bool) {
    let mut s: String = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut reply = false;
    loop {
        // (2) trailing "(fwd)" and whitespace.
        loop {
            let t = s.trim_end();
            // `get`: the cut may fall inside a multi-byte character.
            let tail = t.get(t.len().saturating_sub(5)..);
            if tail.is_some_and(|tail| tail.eq_ignore_ascii_case("(fwd)")) {
                s = t[..t.len() - 5].to_string();
                reply = true;
            } else {
                s = t.to_string();
                break;
            }
        }
        // (3) and (4) until nothing changes: leaders, then a leading blob that does not
        // leave the subject empty.
        loop {
            let before = s.clone();
            s = s.trim_start().to_string();
            if let Some(rest) = strip_refwd(&s) {
                s = rest.to_string();
                reply = true;
            }
            if let Some(rest) = strip_blob(&s) {
                let rest = rest.trim_start();
                if !rest.is_empty() {
                    s = rest.to_string();
                }
            }
            if s == before {
                break;
            }
        }
        // (5) "[fwd: ...]" around the whole subject.
        let head = s.get(..5);
        if s.len() >= 6 && head.is_some_and(|h| h.eq_ignore_ascii_case("[fwd:")) && s.ends_with(']')
        {
            s = s[5..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        return (s.to_lowercase(), reply);
    }
}

/// `subj-blob`: `[...]` without nested brackets.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(']')?;
    if inner[..end].contains('[') {
        return None;
    }
    Some(&inner[end + 1..])
}

/// `*subj-blob subj-refwd`: optional blobs, then `re`, `fw` or `fwd`, optional blobs
/// and a colon. `None` when the subject does not start so.
fn strip_refwd(s: &str) -> Option<&str> {
    let mut rest = s;
    while let Some(after) = strip_blob(rest) {
        rest = after.trim_start();
    }
    let lower = rest.get(..3).unwrap_or(rest).to_ascii_lowercase();
    let marker = if lower.starts_with("fwd") {
        3
    } else if lower.starts_with("re") || lower.starts_with("fw") {
        2
    } else {
        return None;
    };
    let mut rest = rest[marker..].trim_start();
    while let Some(after) = strip_blob(rest) {
        rest = after.trim_start();
    }
    rest.strip_prefix(':')
}

/// What threading needs of one message.
#[derive(Debug, Clone)]
pub(crate) struct Threadable {
    /// What the reply names it by: a sequence number or UID.
    pub(crate) number: u32,
    /// The Date: field, or the internal date when it has none (Unix seconds).
    pub(crate) sent: i64,
    pub(crate) subject: String,
    pub(crate) message_id: Option<String>,
    /// References, or In-Reply-To, oldest first.
    pub(crate) references: Vec<String>,
}

/// THREAD=ORDEREDSUBJECT: messages of one base subject form one thread, the oldest
/// the parent and the others its children in date order; threads in the order of
/// their first messages. `messages` is in sequence order, which breaks date ties.
pub(crate) fn ordered_subject(messages: &[Threadable]) -> Vec<ThreadTree> {
    let mut sorted: Vec<(&Threadable, String)> = messages
        .iter()
        .map(|m| (m, base_subject(&m.subject).0))
        .collect();
    sorted.sort_by(|(a, sa), (b, sb)| sa.cmp(sb).then(a.sent.cmp(&b.sent)));
    let mut threads: Vec<(i64, ThreadTree)> = Vec::new();
    let mut current: Option<&str> = None;
    for (m, subject) in &sorted {
        let leaf = ThreadTree {
            message: Some(m.number),
            children: Vec::new(),
        };
        match (current, threads.last_mut()) {
            (Some(s), Some((_, tree))) if s == subject.as_str() => tree.children.push(leaf),
            _ => {
                threads.push((m.sent, leaf));
                current = Some(subject);
            }
        }
    }
    // Stable, so equal dates keep the subject order from the sort above.
    threads.sort_by_key(|(sent, _)| *sent);
    threads.into_iter().map(|(_, tree)| tree).collect()
}

/// A container of the REFERENCES algorithm: a message, or a message id seen only in
/// references (a dummy).
#[derive(Default)]
struct Container {
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// THREAD=REFERENCES (RFC 5256 section 3): link messages by References and
/// In-Reply-To, drop or promote the parents no message stands for, sort siblings by
/// date, then gather threads whose roots share a base subject.
pub(crate) fn references(messages: &[Threadable]) -> Vec<ThreadTree> {
    let mut arena: Vec<Container> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut id_of = |arena: &mut Vec<Container>, id: &str| -> usize {
        *by_id.entry(id.to_string()).or_insert_with(|| {
            arena.push(Container::default());
            arena.len() - 1
        })
    };
    // (1) One container per message id; a message without one, or repeating one
    // already taken, gets a container of its own.
    for (i, m) in messages.iter().enumerate() {
        let own = match &m.message_id {
            Some(id) => {
                let c = id_of(&mut arena, id);
                if arena[c].message.is_some() {
                    arena.push(Container::default());
                    arena.len() - 1
                } else {
                    c
                }
            }
            None => {
                arena.push(Container::default());
                arena.len() - 1
            }
        };
        arena[own].message = Some(i);
        let refs: Vec<usize> = m.references.iter().map(|r| id_of(&mut arena, r)).collect();
        for pair in refs.windows(2) {
            let (parent, child) = (pair[0], pair[1]);
            if arena[child].parent.is_none() && !reaches(&arena, parent, child) {
                link(&mut arena, parent, child);
            }
        }
        // The message's parent is its last reference, whatever was linked before.
        if let Some(&parent) = refs.last() {
            unlink(&mut arena, own);
            if parent != own && !reaches(&arena, parent, own) {
                link(&mut arena, parent, own);
            }
        }
    }
    // (2)-(4) Roots, dummies pruned, siblings sorted by date.
    let roots: Vec<usize> = (0..arena.len())
        .filter(|&c| arena[c].parent.is_none())
        .collect();
    let mut trees: Vec<ThreadTree> = Vec::new();
    for root in roots {
        trees.extend(prune(&arena, root, true, messages));
    }
    sort_trees(&mut trees, messages);
    // (5) Roots with the same base subject are one thread.
    let index: HashMap<u32, usize> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.number, i))
        .collect();
    let subject_of = |t: &ThreadTree| -> Option<(String, bool)> {
        let m = *index.get(&first_number(t)?)?;
        let (s, reply) = base_subject(&messages[m].subject);
        (!s.is_empty()).then_some((s, reply))
    };
    let mut merged: Vec<ThreadTree> = Vec::new();
    let mut table: HashMap<String, usize> = HashMap::new();
    for tree in trees {
        let Some((subject, reply)) = subject_of(&tree) else {
            merged.push(tree);
            continue;
        };
        let Some(&at) = table.get(&subject) else {
            table.insert(subject, merged.len());
            merged.push(tree);
            continue;
        };
        let existing = &mut merged[at];
        let existing_reply = subject_of(existing).is_some_and(|(_, r)| r);
        match (existing.message.is_none(), tree.message.is_none()) {
            (true, true) => existing.children.extend(tree.children),
            (true, false) => existing.children.push(tree),
            _ if !existing_reply && reply => existing.children.push(tree),
            _ => {
                let old = std::mem::replace(
                    existing,
                    ThreadTree {
                        message: None,
                        children: Vec::new(),
                    },
                );
                existing.children = vec![old, tree];
            }
        }
    }
    // (6) Sort once more: merging added children.
    sort_trees(&mut merged, messages);
    merged
}

/// Whether `to` is `from` or one of its ancestors' descendants, i.e. linking `to`
/// under `from` would make a loop.
fn reaches(arena: &[Container], from: usize, to: usize) -> bool {
    let mut at = Some(from);
    let mut steps = 0;
    while let Some(c) = at {
        if c == to {
            return true;
        }
        steps += 1;
        if steps > arena.len() {
            return true;
        }
        at = arena[c].parent;
    }
    false
}

fn link(arena: &mut [Container], parent: usize, child: usize) {
    arena[child].parent = Some(parent);
    arena[parent].children.push(child);
}

fn unlink(arena: &mut [Container], child: usize) {
    if let Some(parent) = arena[child].parent.take() {
        arena[parent].children.retain(|&c| c != child);
    }
}

/// A container as trees: itself with its pruned children, or, for a dummy, its
/// children promoted (kept as a dummy only at the top with more than one child).
fn prune(arena: &[Container], c: usize, top: bool, messages: &[Threadable]) -> Vec<ThreadTree> {
    let children: Vec<ThreadTree> = arena[c]
        .children
        .iter()
        .flat_map(|&ch| prune(arena, ch, false, messages))
        .collect();
    match arena[c].message {
        Some(m) => vec![ThreadTree {
            message: Some(messages[m].number),
            children,
        }],
        None if top && children.len() > 1 => vec![ThreadTree {
            message: None,
            children,
        }],
        None => children,
    }
}

fn sort_trees(trees: &mut [ThreadTree], messages: &[Threadable]) {
    let by_number: HashMap<u32, i64> = messages.iter().map(|m| (m.number, m.sent)).collect();
    sort_level(trees, &by_number);
}

fn sort_level(trees: &mut [ThreadTree], sent: &HashMap<u32, i64>) {
    for t in trees.iter_mut() {
        sort_level(&mut t.children, sent);
    }
    // A dummy sorts by its first child, after its children are sorted.
    let key = |t: &ThreadTree| -> (i64, u32) {
        let n = first_number(t).unwrap_or(u32::MAX);
        (sent.get(&n).copied().unwrap_or(i64::MAX), n)
    };
    trees.sort_by_key(key);
}

fn first_number(t: &ThreadTree) -> Option<u32> {
    t.message
        .or_else(|| t.children.first().and_then(first_number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_base_subjects() {
        let cases = [
            ("Hello", "hello", false),
            ("Re: Hello", "hello", true),
            ("RE:  re: Hello", "hello", true),
            ("Fwd: Hello", "hello", true),
            ("Fw: [list] Re: Hello (fwd)", "hello", true),
            ("[list] Hello", "hello", false),
            ("[list]", "[list]", false),
            ("[Fwd: Re: Hello]", "hello", true),
            ("  Hello \t  world  ", "hello world", false),
            ("Reply all", "reply all", false),
            ("Re [2]: Hello", "hello", true),
            ("", "", false),
            ("Grüße", "grüße", false),
        ];
        for (subject, base, reply) in cases {
            assert_eq!(
                base_subject(subject),
                (base.to_string(), reply),
                "{subject:?}"
            );
        }
    }

    fn msg(number: u32, sent: i64, subject: &str, id: &str, refs: &[&str]) -> Threadable {
        Threadable {
            number,
            sent,
            subject: subject.into(),
            message_id: (!id.is_empty()).then(|| id.to_string()),
            references: refs.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn encode(trees: Vec<ThreadTree>) -> String {
        let mut out = Vec::new();
        evermail_imap_proto::response::Data::Thread(trees).encode(&mut out);
        String::from_utf8(out).unwrap().trim_end().to_string()
    }

    #[test]
    fn orders_by_subject() {
        let messages = [
            msg(1, 10, "apples", "a", &[]),
            msg(2, 30, "Re: apples", "b", &[]),
            msg(3, 5, "bananas", "c", &[]),
            msg(4, 20, "re: APPLES", "d", &[]),
            msg(5, 40, "cherries", "e", &[]),
        ];
        assert_eq!(
            encode(ordered_subject(&messages)),
            "* THREAD (3)(1 (4)(2))(5)"
        );
    }

    #[test]
    fn threads_by_references() {
        let messages = [
            msg(1, 10, "plan", "p1", &[]),
            msg(2, 20, "Re: plan", "p2", &["p1"]),
            // A reply to a message not in the mailbox: "gone" becomes a dummy.
            msg(3, 30, "Re: old", "o2", &["gone"]),
            msg(4, 25, "Re: plan", "p3", &["p1", "p2"]),
            msg(5, 15, "Re: plan", "p4", &["p1"]),
            msg(6, 50, "Re: old", "o3", &["gone"]),
            msg(7, 60, "unrelated", "", &[]),
            // Same base subject as 1 but no references: gathered into its thread.
            msg(8, 70, "Re: plan", "p5", &[]),
        ];
        assert_eq!(
            encode(references(&messages)),
            "* THREAD (1 (5)(2 4)(8))((3)(6))(7)"
        );
    }

    #[test]
    fn reference_loops_are_broken() {
        let messages = [
            msg(1, 10, "a", "x", &["y"]),
            msg(2, 20, "b", "y", &["x"]),
            msg(3, 30, "c", "x", &[]),
        ];
        // No panic and every message appears once.
        let out = encode(references(&messages));
        for n in ["1", "2", "3"] {
            assert_eq!(out.matches(n).count(), 1, "{out}");
        }
    }
}
