//! The shared metadata conformance suite, against a real MariaDB Galera cluster, each
//! test on its own fresh database reached through every node.

mod common;

evermail_meta::meta_conformance_tests!(optional common::fresh());
