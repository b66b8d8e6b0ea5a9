//! Small value types of the engine: scope levels, level sets, interned IDs and permission bitsets.

use std::fmt;

/// The level of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The account itself.
    Account = 0,
    /// An organization of the account.
    Organization = 1,
    /// A project of an organization.
    Project = 2,
}

impl Level {
    /// Every level, from the top.
    pub const ALL: [Level; 3] = [Level::Account, Level::Organization, Level::Project];

    /// The upper-case name used in files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Level::Account => "ACCOUNT",
            Level::Organization => "ORGANIZATION",
            Level::Project => "PROJECT",
        }
    }

    /// Parses an upper-case level name.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of levels (where a permission may be granted, or a managed role assigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct LevelSet(u8);

impl LevelSet {
    /// All three levels.
    pub const ALL: LevelSet = LevelSet(0b111);

    /// The set holding just `level`.
    pub const fn only(level: Level) -> LevelSet {
        LevelSet(1 << level as u8)
    }

    /// This set plus `level`.
    pub const fn with(self, level: Level) -> LevelSet {
        LevelSet(self.0 | 1 << level as u8)
    }

    /// Whether `level` is in the set.
    pub const fn contains(self, level: Level) -> bool {
        self.0 & (1 << level as u8) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// An interned permission: its index in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PermId(pub u16);

/// An interned resource type: its index in the catalog's type table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceTypeId(pub u16);

/// A set of permissions as a bitset over the catalog's permission indexes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PermissionSet {
    words: Box<[u64]>,
}

impl PermissionSet {
    /// An empty set able to hold `capacity` permissions.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            words: vec![0; capacity.div_ceil(64)].into_boxed_slice(),
        }
    }

    /// Adds a permission (ignored if outside the capacity).
    pub fn insert(&mut self, id: PermId) {
        let index = usize::from(id.0);
        if let Some(word) = self.words.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
    }

    /// Whether the set holds the permission.
    #[inline]
    pub fn contains(&self, id: PermId) -> bool {
        let index = usize::from(id.0);
        self.words
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// The permissions in the set, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = PermId> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            (0..64u16)
                .filter(move |bit| word & (1 << bit) != 0)
                .map(move |bit| PermId(w as u16 * 64 + bit))
        })
    }

    /// How many permissions the set holds.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }
}

impl FromIterator<PermId> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = PermId>>(iter: I) -> Self {
        let ids: Vec<PermId> = iter.into_iter().collect();
        let capacity = ids.iter().map(|id| usize::from(id.0) + 1).max().unwrap_or(0);
        let mut set = Self::with_capacity(capacity);
        for id in ids {
            set.insert(id);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_set_holds_exactly_what_was_inserted() {
        let set: PermissionSet = [PermId(0), PermId(63), PermId(64), PermId(200)]
            .into_iter()
            .collect();
        assert!(set.contains(PermId(63)) && set.contains(PermId(64)) && set.contains(PermId(200)));
        assert!(!set.contains(PermId(1)) && !set.contains(PermId(201)) && !set.contains(PermId(9999)));
        assert_eq!(set.len(), 4);
        assert_eq!(set.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 63, 64, 200]);
    }

    #[test]
    fn level_sets() {
        let set = LevelSet::only(Level::Account).with(Level::Organization);
        assert!(set.contains(Level::Organization) && !set.contains(Level::Project));
        assert!(LevelSet::ALL.contains(Level::Project));
        assert!(LevelSet::default().is_empty());
    }
}
