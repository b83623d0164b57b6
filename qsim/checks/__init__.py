"""Consistency checkers: pure functions of the operation history, one key (or session) at a time.

They take the ops table (a DataFrame with qsim's ops columns, from a run or brought by a user) and
do not care which protocol produced it: writes are ordered by (ts_ms, client, op_id), the order in
which last-writer-wins keeps them, and a read names the write it returned by that write's op_id.
"""
