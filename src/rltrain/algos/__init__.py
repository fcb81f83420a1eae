"""One file per algorithm: its networks, act() and update(). See rltrain.agent for the contract."""
