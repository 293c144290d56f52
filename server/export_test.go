package server

// Connections is how many connections the node's listeners hold (tests).
func (s *Server) Connections() int { return s.connections() }
