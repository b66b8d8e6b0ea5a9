//! Reading the scope (account, org, project) of a request from its scope sources: path captures,
//! query parameters, headers and the credential's account.

use std::borrow::Cow;

use super::normalize::{Query, decode_capture};
use super::spec::Source;
use super::{RouteError, RouteRequest, Scope, ScopeOrigins};

/// What the sources of one request are read from. `'a` is the request (and table) lifetime, `'p`
/// the lifetime of the normalised path the captures borrow from; `lift` turns a capture borrowed
/// from the path into a value of lifetime `'a` (borrowing when the path is the request's own,
/// copying when normalisation had to rewrite it).
pub(crate) struct Inputs<'a, 'r, 'p, L> {
    pub req: &'r RouteRequest<'a>,
    pub query: Query<'a>,
    pub params: Option<&'r matchit::Params<'r, 'p>>,
    pub lift: &'r L,
}

impl<'a, 'p, L> Inputs<'a, '_, 'p, L>
where
    L: Fn(&'p str) -> Cow<'a, str>,
{
    /// The value of one source; an empty value counts as absent.
    fn value(&self, src: &Source) -> Result<Option<Cow<'a, str>>, RouteError> {
        let v = match src {
            Source::Path(name) => self.capture(name)?,
            Source::Query(name) => self.query.get(name)?,
            Source::Header(name) => match (self.req.headers)(name) {
                Some(h) if h.contains(',') => return Err(RouteError::AmbiguousHeader),
                Some(h) => Some(Cow::Borrowed(h.trim())),
                None => None,
            },
            Source::Credential => self.req.credential_account.map(Cow::Borrowed),
        };
        Ok(v.filter(|v| !v.is_empty()))
    }

    /// The first non-empty value of `sources`, in order, with the source that gave it.
    fn first<'s>(&self, sources: &'s [Source]) -> Result<Option<(Cow<'a, str>, &'s Source)>, RouteError> {
        for src in sources {
            if let Some(v) = self.value(src)? {
                return Ok(Some((v, src)));
            }
        }
        Ok(None)
    }

    /// The account: the first non-empty source wins, but every source the request itself
    /// supplies (path, query, header) must agree, so a request cannot name one account to
    /// scopegate and another to the upstream. The credential's account is not compared here: a
    /// credential of another account is authentication's business (401).
    fn account<'s>(&self, sources: &'s [Source]) -> Result<Option<(Cow<'a, str>, &'s Source)>, RouteError> {
        let mut chosen: Option<(Cow<'a, str>, &'s Source)> = None;
        let mut supplied: Option<Cow<'a, str>> = None;
        for src in sources {
            if chosen.is_some() && matches!(src, Source::Credential) {
                continue;
            }
            let Some(v) = self.value(src)? else { continue };
            if !matches!(src, Source::Credential) {
                match &supplied {
                    Some(prev) if *prev != v => return Err(RouteError::AmbiguousAccount),
                    Some(_) => {}
                    None => supplied = Some(v.clone()),
                }
            }
            if chosen.is_none() {
                chosen = Some((v, src));
            }
        }
        Ok(chosen)
    }

    /// The whole scope, and the source each level was read from. A project without an org is
    /// [`RouteError::ProjectWithoutOrg`].
    pub fn scope<'s>(
        &self,
        account: &'s [Source],
        org: &'s [Source],
        project: &'s [Source],
    ) -> Result<(Scope<'a>, ScopeOrigins<'s>), RouteError> {
        let (account, account_from) = split(self.account(account)?);
        let (org, org_from) = split(self.first(org)?);
        let (project, project_from) = split(self.first(project)?);
        if project.is_some() && org.is_none() {
            return Err(RouteError::ProjectWithoutOrg);
        }
        let scope = Scope {
            account,
            org,
            project,
        };
        let origins = ScopeOrigins {
            account: account_from,
            org: org_from,
            project: project_from,
        };
        Ok((scope, origins))
    }

    /// The value of a capture of the matched path, percent-decoded; empty counts as absent.
    pub fn capture(&self, name: &str) -> Result<Option<Cow<'a, str>>, RouteError> {
        let Some(raw) = self.params.and_then(|p| p.get(name)) else {
            return Ok(None);
        };
        let v = match decode_capture(raw)? {
            Cow::Borrowed(b) => (self.lift)(b),
            Cow::Owned(o) => Cow::Owned(o),
        };
        Ok(Some(v).filter(|v| !v.is_empty()))
    }
}

/// A value and its source, as two options.
fn split<'a, 's>(found: Option<(Cow<'a, str>, &'s Source)>) -> (Option<Cow<'a, str>>, Option<&'s Source>) {
    match found {
        Some((v, src)) => (Some(v), Some(src)),
        None => (None, None),
    }
}
