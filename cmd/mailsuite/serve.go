package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mailsuite/mailsuite"
)

func runServe(args []string, stderr io.Writer) int {
	fs, cfgPath := newFlags("serve", stderr)
	if _, err := parseInterleaved(fs, args); err != nil {
		return 2
	}
	cfg, err := mailsuite.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "mailsuite:", err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	suite, err := mailsuite.New(cfg, mailsuite.Options{Logger: log})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := suite.Start(); err != nil {
		log.Error("cannot start", "err", err)
		suite.Shutdown(context.Background())
		return 1
	}
	log.Info("mailsuite running", "config", cfg.Path, "data", cfg.Server.DataDir, "domains", cfg.Server.Domains)

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	got := <-sig
	log.Info("shutting down: finishing transfers in progress", "signal", got.String(), "grace", cfg.Server.ShutdownGrace)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace)
	defer cancel()
	go func() {
		// A second signal means "now".
		<-sig
		cancel()
	}()
	if err := suite.Shutdown(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(c mailsuite.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level)) // validated by the config loader
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
