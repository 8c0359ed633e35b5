"""One router per dashboard page; :data:`ROUTERS` lists them all."""
