//! The conn as a tower request and back: what a tower layer in a pipeline and a forwarded
//! service see of it, and what they hand back.

use std::cell::OnceCell;

use http::{Request, Response, StatusCode};

use super::{Body, Conn};

impl Conn {
    /// Splits the conn into a request for a tower service, keeping the rest for later.
    pub(crate) fn into_request(mut self) -> (Request<Body>, Conn) {
        self.settle_conn_info();
        // The service may change the URI the params point into.
        self.0.path_params.detach(self.0.req.uri.path());
        let body = self.take_body();
        let parts = std::mem::replace(&mut self.0.req, Request::new(()).into_parts().0);
        (Request::from_parts(parts, body), self)
    }

    /// Puts back the request parts a tower layer may have changed.
    pub(crate) fn restore_request(&mut self, req: Request<Body>) {
        let (parts, body) = req.into_parts();
        self.0.req = parts;
        self.0.extensions_view = OnceCell::new();
        self.0.body = Some(body);
    }

    /// Moves the response out, leaving an empty one, for a tower layer to see.
    pub(crate) fn take_response(&mut self) -> Response<Body> {
        let mut resp = Response::new(std::mem::take(&mut self.0.resp_body));
        *resp.status_mut() = self.0.status.take().unwrap_or(StatusCode::OK);
        *resp.headers_mut() = std::mem::take(&mut self.0.resp_headers);
        resp
    }

    /// Replaces the response with one a tower service produced.
    pub(crate) fn set_response(&mut self, resp: Response<Body>) {
        let (parts, body) = resp.into_parts();
        self.0.status = Some(parts.status);
        self.0.resp_headers = parts.headers;
        self.0.resp_body = body;
    }
}
