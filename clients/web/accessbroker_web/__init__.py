"""The accessbroker's self-service web page, a client of the broker like brokerctl."""
