//! The routes of the example app.

use crate::repo::{self, Repo};

fawkes::router! {
    /// Every route of the example app. Build it with [`build`], which gives the `api`
    /// pipeline its repo.
    pub AppRouter;

    pipeline browser {
        plug fawkes::plug::accepts(["html"]);
    }

    pipeline api {
        plug fawkes::plug::accepts(["json"]);
        plug repo::put_repo();
    }

    get "/healthz" => fawkes::telemetry::healthz, as: healthz;
    get "/readyz" => fawkes::telemetry::readyz, as: readyz;

    scope "/" {
        pipe_through browser;
        get "/" => crate::controllers::page_controller::index;
    }

    scope "/api" {
        pipe_through api;
        resources "/rooms" => crate::controllers::room_controller, except: [new, edit] {
            resources "/messages" => crate::controllers::message_controller, only: [index, create];
        }
    }
}

/// The router, with `repo` behind every `/api` route.
pub fn build(repo: Repo) -> AppRouter {
    repo::building_with(repo, AppRouter::new)
}
