"""The API's routes, one router per resource: ops (health, readiness), search, catalog,
recommendations (recommend, similar), events and admin. Each module's ``router`` function
builds its router from the app's shared services and the guards of the roles it needs."""
