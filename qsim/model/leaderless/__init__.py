"""The leaderless (Dynamo/Cassandra-style) protocol: any coordinator, N replicas per key, R/W quorums.

Its parts: the coordinator (:mod:`.coordinator`) with its operations (:mod:`.op`), the ring of
replicas (:mod:`.ring`), replica selection (:mod:`.selection`), hedging (:mod:`.hedging`), region
levels (:mod:`.levels`), failover (:mod:`.failover`), read repair (:mod:`.readrepair`), hinted
handoff and anti-entropy (:mod:`.repair`). :func:`qsim.model.leaderless.build.build` wires them.
"""
