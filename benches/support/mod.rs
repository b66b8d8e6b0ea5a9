//! Shared support for the benches: a deterministic generator of a large, realistic account
//! snapshot (`generate`, `Shape`) and the naive reference model of the decision (`naive`: the
//! oracle of `tests/model_equivalence`, included from there so that one model is timed and trusted).
//!
//! Each bench target includes this module with `mod support;` and uses a subset of it.

#![allow(dead_code)]

mod generate;
#[path = "../../tests/model_equivalence/naive.rs"]
pub mod naive;

pub use generate::generate;

/// The size of a generated account. `Default` is the account of the performance issue.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The account identifier.
    pub account: String,
    /// Organizations.
    pub orgs: usize,
    /// Projects of each organization.
    pub projects_per_org: usize,
    /// Users (account-wide; each has a home organization its groups and assignments favour).
    pub users: usize,
    /// User groups, at account (5%), organization (50%) and project (45%) level.
    pub user_groups: usize,
    /// Average members of a user group (actual size is this ± 5).
    pub group_size: usize,
    /// Service accounts, at account (10%), organization (30%) and project (60%) level.
    pub service_accounts: usize,
    /// Custom roles, at account (10%), organization (40%) and project (50%) level.
    pub custom_roles: usize,
    /// Custom resource groups with pipeline identifier lists, at organization (20%) and project (80%) level.
    pub resource_groups: usize,
    /// Pipeline identifiers listed by each custom resource group.
    pub pipelines_per_resource_group: usize,
    /// Pipelines are named `pipeline_000` .. in every project; this is how many names exist.
    pub pipeline_names: usize,
    /// Role assignments: ~2% account, ~18% organization, ~80% project; ~49% users, ~49% groups, ~2%
    /// service accounts; ~2% disabled.
    pub role_assignments: usize,
    /// Seed of the generator: the same shape and seed give the same snapshot.
    pub seed: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            account: "bench".to_owned(),
            orgs: 200,
            projects_per_org: 10,
            users: 20_000,
            user_groups: 2_000,
            group_size: 20,
            service_accounts: 500,
            custom_roles: 200,
            resource_groups: 50,
            pipelines_per_resource_group: 20,
            pipeline_names: 200,
            role_assignments: 100_000,
            seed: 0x5c0e_9a7e,
        }
    }
}

/// The name of pipeline `n`, as listed by generated resource groups.
pub fn pipeline_name(n: usize) -> String {
    format!("pipeline_{n:03}")
}

/// SplitMix64: a tiny deterministic PRNG (stable across dependency upgrades, unlike `StdRng`).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Picks from `(weight, value)` pairs.
    pub fn weighted<T: Copy>(&mut self, choices: &[(u32, T)]) -> T {
        let total: u32 = choices.iter().map(|(w, _)| w).sum();
        let mut roll = self.below(total as usize) as u32;
        for (weight, value) in choices {
            if roll < *weight {
                return *value;
            }
            roll -= weight;
        }
        choices[choices.len() - 1].1
    }

    /// Picks one item of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
