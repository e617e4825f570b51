//! Rendezvous (highest random weight) hashing: every node gets a score for the user,
//! and the user goes to the highest. A node joining takes only the users it now scores
//! highest for; a node leaving gives away only its own. Every proxy computes the same
//! order from the same node names without talking to the others.

use evermail_meta::NodeRecord;

/// A stable score: BLAKE3 is the same on every machine and build (std's hasher is not
/// promised to be).
fn score(user: &str, node: &str) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(node.as_bytes());
    hasher.update(&[0]);
    hasher.update(user.to_ascii_lowercase().as_bytes());
    let hash = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// `nodes` in the order to try for `user`: the first is the user's home while it is
/// up, the next takes over when it is not. Case-insensitive in the user, as addresses
/// are.
pub fn rendezvous_order<'a>(user: &str, nodes: &'a [NodeRecord]) -> Vec<&'a NodeRecord> {
    let mut ranked: Vec<(u64, &NodeRecord)> =
        nodes.iter().map(|n| (score(user, &n.name), n)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    ranked.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use evermail_meta::NodeState;

    fn node(name: &str) -> NodeRecord {
        NodeRecord {
            name: name.into(),
            instance: String::new(),
            addresses: vec![],
            version: String::new(),
            state: NodeState::Active,
            sessions: 0,
            started_at: 0,
            heartbeat_at: 0,
        }
    }

    fn home(user: &str, nodes: &[NodeRecord]) -> String {
        rendezvous_order(user, nodes)[0].name.clone()
    }

    #[test]
    fn only_the_users_of_a_joining_node_move() {
        let three: Vec<_> = ["a", "b", "c"].into_iter().map(node).collect();
        let four: Vec<_> = ["a", "b", "c", "d"].into_iter().map(node).collect();
        let users: Vec<String> = (0..4000).map(|i| format!("user{i}@example.com")).collect();
        let mut moved = 0;
        let mut per_node = std::collections::HashMap::new();
        for user in &users {
            let (before, after) = (home(user, &three), home(user, &four));
            if before != after {
                // A user moves only to the new node, never between old ones.
                assert_eq!(after, "d", "{user}");
                moved += 1;
            }
            *per_node.entry(before).or_insert(0) += 1;
        }
        println!(
            "{moved} of {} users moved to the new fourth node",
            users.len()
        );
        // About a quarter move; each of three nodes gets about a third.
        assert!((800..1200).contains(&moved), "{moved} moved");
        for (name, count) in per_node {
            assert!((1100..1570).contains(&count), "{name}: {count}");
        }
    }

    #[test]
    fn the_order_is_stable_and_case_insensitive() {
        let nodes: Vec<_> = ["a", "b", "c"].into_iter().map(node).collect();
        let names = |user: &str| -> Vec<String> {
            rendezvous_order(user, &nodes)
                .iter()
                .map(|n| n.name.clone())
                .collect()
        };
        assert_eq!(names("Bob@Example.com"), names("bob@example.com"));
        assert_eq!(names("x").len(), 3);
        // Removing the home node promotes the user's second choice.
        let order = names("alice@example.com");
        let rest: Vec<_> = nodes
            .iter()
            .filter(|n| n.name != order[0])
            .cloned()
            .collect();
        assert_eq!(home("alice@example.com", &rest), order[1]);
    }
}
