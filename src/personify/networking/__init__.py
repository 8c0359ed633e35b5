"""Professional networking: people worth meeting (reciprocal), learned from who acts towards whom.

``state`` (the network), ``features`` / ``model`` (directional interest, and both sides'
combined by a weighted geometric mean whose share is learned), ``candidates`` (graph, threads,
profile, community, popular), ``recommender``,
``training``, ``evaluation`` (temporal split, baselines, bootstrap), ``simulation``,
``stackexchange`` (the Quantum Computing Stack Exchange network as interactions and profiles).
"""
