"""The portal's commands: each calls the owning service's API as the signed-in user."""
