"""Request and response bodies of the HTTP API. Domain records are the public shapes where they
fit; separate Create / Update / Public schemas exist where the wire shape differs."""
