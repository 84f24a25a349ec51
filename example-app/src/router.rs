//! The routes of the example app.

use crate::channels::UserSocket;
use crate::repo::Repo;

fawkes::router! {
    /// Every route of the example app. Build it with [`build`], which hands it the repo.
    pub AppRouter;

    pipeline browser {
        plug fawkes::plug::request_id();
        plug fawkes::plug::accepts(["html"]);
    }

    pipeline api {
        plug fawkes::plug::request_id();
        plug fawkes::plug::accepts(["json"]);
    }

    get "/healthz" => fawkes::telemetry::healthz, as: healthz;
    get "/readyz" => fawkes::telemetry::readyz, as: readyz;
    get "/metrics" => fawkes::telemetry::prometheus, as: metrics;
    get "/js/fawkes.js" => fawkes::socket::client_js, as: client_js;
    get "/assets/:name" => crate::controllers::page_controller::asset, as: asset;

    socket "/socket" => UserSocket::from_env();

    scope "/" {
        pipe_through browser;
        get "/" => crate::controllers::page_controller::index;
        get "/dashboard" => crate::controllers::page_controller::dashboard;
    }

    scope "/api" {
        pipe_through api;
        resources "/rooms" => crate::controllers::room_controller, except: [new, edit] {
            resources "/messages" => crate::controllers::message_controller, only: [index, create];
        }
    }
}

/// The router: `repo` is in every request's assigns (`conn.get_assign::<Repo>()`), and so
/// in the socket's connect info, from where it reaches the channels.
pub fn build(repo: Repo) -> fawkes::Router {
    fawkes::Router::from(AppRouter::new()).assign(repo)
}
