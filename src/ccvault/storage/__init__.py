"""PostgreSQL access: the pool, the profile store and the tenant registry."""
