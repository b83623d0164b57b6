"""The leader-based (Raft-style) protocol: election, log replication to a quorum, read modes."""
