//! Copy-on-write containers of `CompiledAccount`: a vector cut into `Arc`'d chunks and a map cut into
//! `Arc`'d shards. A clone shares everything; a write copies the spine (one pointer per chunk or
//! shard) and the one chunk or shard it touches, so an incremental compile costs in proportion to
//! what it changes, not to the account. Reads are one more pointer hop than a plain `Vec`/`HashMap`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Arc;

/// Elements per chunk of a [`ChunkedVec`].
const CHUNK: usize = 64;

/// A vector of `Arc`'d chunks of [`CHUNK`] elements.
#[derive(Debug, Clone)]
pub struct ChunkedVec<T> {
    chunks: Arc<Vec<Arc<Vec<T>>>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self {
            chunks: Arc::new(Vec::new()),
            len: 0,
        }
    }
}

impl<T: Clone> ChunkedVec<T> {
    /// An empty vector.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many elements it holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element at `index`.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    /// The element at `index`, for writing: copies its chunk if another account shares it.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let chunk = Arc::make_mut(&mut self.chunks).get_mut(index / CHUNK)?;
        Arc::make_mut(chunk).get_mut(index % CHUNK)
    }

    /// Appends an element.
    pub fn push(&mut self, value: T) {
        let chunks = Arc::make_mut(&mut self.chunks);
        match chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(value),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }
}

impl<T: Clone> FromIterator<T> for ChunkedVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut vec = Self::new();
        for item in items {
            vec.push(item);
        }
        vec
    }
}

/// Shards of a [`ShardedMap`].
const SHARDS: usize = 64;

/// A hash map split into `Arc`'d shards by key hash.
#[derive(Debug, Clone)]
pub struct ShardedMap<K, V> {
    shards: Arc<Vec<Arc<HashMap<K, V>>>>,
    hasher: RandomState,
    len: usize,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self {
            shards: Arc::new((0..SHARDS).map(|_| Arc::new(HashMap::new())).collect()),
            hasher: RandomState::new(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> ShardedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// The value of `key`.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards.get(self.shard_of(key))?.get(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Sets the value of `key`, returning the one it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shard_of(&key);
        let previous = Arc::make_mut(&mut self.shards)
            .get_mut(shard)
            .and_then(|map| Arc::make_mut(map).insert(key, value));
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard_of(key);
        if !self.shards.get(shard).is_some_and(|map| map.contains_key(key)) {
            return None;
        }
        let removed = Arc::make_mut(&mut self.shards)
            .get_mut(shard)
            .and_then(|map| Arc::make_mut(map).remove(key));
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|shard| shard.iter())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_write_leaves_the_clone_it_came_from_alone() {
        let mut vec: ChunkedVec<u32> = (0..200).collect();
        let before = vec.clone();
        *vec.get_mut(130).unwrap() = 7;
        vec.push(200);
        assert_eq!(before.get(130), Some(&130));
        assert_eq!(vec.get(130), Some(&7));
        assert_eq!((before.len(), vec.len()), (200, 201));
        assert_eq!(vec.iter().count(), 201);

        let mut map: ShardedMap<Box<str>, u32> = ShardedMap::new();
        map.insert("a".into(), 1);
        let shared = map.clone();
        map.insert("b".into(), 2);
        assert_eq!(map.remove("a"), Some(1));
        assert_eq!((shared.get("a"), shared.get("b")), (Some(&1), None));
        assert_eq!((map.get("a"), map.get("b"), map.len()), (None, Some(&2), 1));
    }
}
