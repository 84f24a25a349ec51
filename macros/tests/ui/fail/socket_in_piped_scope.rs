struct UserSocket;

impl fawkes::socket::Socket for UserSocket {
    async fn connect(
        &self,
        _params: &serde_json::Map<String, serde_json::Value>,
        _info: &fawkes::socket::ConnectInfo,
    ) -> Result<fawkes::Assigns, fawkes::socket::Refused> {
        Ok(fawkes::Assigns::new())
    }

    fn channels(&self) -> fawkes::socket::Channels {
        fawkes::socket::Channels::new()
    }
}

fawkes::router! {
    pub App;

    pipeline browser {
        plug fawkes::plug::request_id();
    }

    scope "/" {
        pipe_through browser;
        socket "/socket" => UserSocket;
    }
}

fn main() {}
