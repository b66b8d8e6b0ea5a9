//! The management API's route table: Harness's paths, as its official client calls them.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

use super::{Management, api_keys, assignment_queries as aq, assignments, org_project as op};
use super::{principals as sa, resource_groups as rg};
use super::{roles, status, tokens, user_groups as ug, users};

/// Every route, over the management state.
pub fn routes() -> Router<Arc<Management>> {
    Router::new()
        // scopegate's own: the sidecars syncing with this replica, and its metrics
        .route("/v1/sidecars", get(status::sidecars))
        .route("/metrics", get(status::metrics))
        .route("/ng/api/organizations", get(op::list_orgs).post(op::create_org))
        .route(
            "/ng/api/organizations/{identifier}",
            get(op::get_org).put(op::update_org).delete(op::delete_org),
        )
        .route(
            "/ng/api/projects",
            get(op::list_projects).post(op::create_project),
        )
        .route(
            "/ng/api/projects/{identifier}",
            get(op::get_project)
                .put(op::update_project)
                .delete(op::delete_project),
        )
        .route("/ng/api/serviceaccount", get(sa::list_sas).post(sa::create_sa))
        .route("/ng/api/serviceaccount/aggregate", get(sa::list_sa_aggregates))
        .route("/ng/api/serviceaccount/aggregate/{identifier}", get(sa::get_sa))
        .route(
            "/ng/api/serviceaccount/{identifier}",
            put(sa::update_sa).delete(sa::delete_sa),
        )
        .route(
            "/ng/api/user-groups",
            get(ug::list).post(ug::upsert).put(ug::upsert),
        )
        .route(
            "/ng/api/user-groups/{identifier}",
            get(ug::get).delete(ug::delete),
        )
        .route("/ng/api/user-groups/{identifier}/users", post(ug::users))
        .route("/ng/api/user/users", post(users::add))
        .route("/ng/api/user/aggregate", post(users::list))
        .route("/ng/api/user/aggregate/{user}", get(users::get))
        .route("/ng/api/user/{user}", axum::routing::delete(users::remove))
        .route(
            "/ng/api/user-groups/{identifier}/member/{user}",
            get(ug::member).put(ug::member).delete(ug::member),
        )
        .route("/ng/api/apikey", get(api_keys::list).post(api_keys::create))
        .route("/ng/api/apikey/aggregate", get(api_keys::list))
        .route("/ng/api/apikey/aggregate/{identifier}", get(api_keys::get))
        .route(
            "/ng/api/apikey/{identifier}",
            put(api_keys::update).delete(api_keys::delete),
        )
        .route("/ng/api/token", post(tokens::create))
        .route("/ng/api/token/aggregate", get(tokens::list))
        .route("/ng/api/token/rotate/{identifier}", post(tokens::rotate))
        .route(
            "/ng/api/token/{identifier}",
            put(tokens::update).delete(tokens::delete),
        )
        .route("/authz/api/roles", get(roles::list).post(roles::create))
        .route(
            "/authz/api/roles/{identifier}",
            get(roles::get).put(roles::update).delete(roles::delete),
        )
        .route(
            "/authz/api/roleassignments",
            get(assignments::list).post(assignments::create),
        )
        .route("/authz/api/roleassignments/multi", post(assignments::create))
        .route("/authz/api/roleassignments/filter", post(aq::filter))
        .route("/authz/api/roleassignments/aggregate", post(aq::aggregate))
        .route("/authz/api/roleassignments/validate", post(aq::validate))
        .route(
            "/authz/api/roleassignments/delete/batch",
            post(assignments::delete_batch),
        )
        .route(
            "/authz/api/roleassignments/{identifier}",
            get(assignments::get).delete(assignments::delete),
        )
        .route("/v1/resource-groups", get(rg::list).post(rg::create))
        .route(
            "/v1/resource-groups/{resource_group}",
            get(rg::get).put(rg::update).delete(rg::delete),
        )
        .route(
            "/v1/orgs/{org}/resource-groups",
            get(rg::list_org).post(rg::create_org),
        )
        .route(
            "/v1/orgs/{org}/resource-groups/{resource_group}",
            get(rg::get_org).put(rg::update_org).delete(rg::delete_org),
        )
        .route(
            "/v1/orgs/{org}/projects/{project}/resource-groups",
            get(rg::list_project).post(rg::create_project),
        )
        .route(
            "/v1/orgs/{org}/projects/{project}/resource-groups/{resource_group}",
            get(rg::get_project)
                .put(rg::update_project)
                .delete(rg::delete_project),
        )
        .fallback(super::not_found)
}
