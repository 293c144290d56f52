package server

import "errors"

// ReloadAccess rereads the access file the node started with (serve calls
// it on SIGHUP). A file that does not load keeps the old rules: a typo must
// not lock every client out, nor let every client in. Either way the reload
// is logged and counted (bouncer_access_reloads_total). New rules judge
// every call made after the swap, and every request read after it on an
// open Pipe; a stream already open (Watch, Events, KeepAlive) keeps going.
func (s *Server) ReloadAccess() error {
	old := s.access.Load()
	if old == nil {
		return errors.New("access rules are off: the node was started without an access file")
	}
	rules, err := LoadAccessFile(old.Path())
	if err != nil {
		s.metrics.accessReloads.WithLabelValues("failed").Inc()
		s.log.Error("access file reload failed: the old rules stay", "err", err)
		return err
	}
	s.access.Store(rules)
	s.metrics.accessReloads.WithLabelValues("ok").Inc()
	s.log.Info("access rules reloaded", "file", rules.Path(), "identities", rules.Identities())
	return nil
}
