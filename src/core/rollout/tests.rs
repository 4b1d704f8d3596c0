//! Property tests of the rollout policy (design §2.5).
