package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
)

// Set by the build: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
// Without them, the module version and VCS revision Go recorded are used.
var (
	version = ""
	commit  = ""
)

// cli is what a command reads and writes.
type cli struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// command is one of leadrelay's commands.
type command struct {
	name     string
	synopsis string // arguments after the name, for usage
	summary  string // one line for `leadrelay help`
	details  string // more for `leadrelay <name> --help`; may be empty
	// setup declares the command's flags on fs and returns what runs it
	// with the arguments left after the flags.
	setup func(fs *flag.FlagSet) func(ctx context.Context, c cli, args []string) error
}

// usageError is a command line leadrelay cannot understand: it exits 2, as
// flag's own errors do.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// exitCode is the process status for run's error.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// commands lists every command, in the order `leadrelay help` shows them.
func commands() []command {
	return []command{
		serveCommand,
		migrateCommand,
		replayCommand,
		doctorCommand,
		statusCommand,
		devCommand,
		versionCommand,
	}
}

func lookup(name string) (command, bool) {
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands()[i], true
}

// run is the program: args[1] names the command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := cli{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) < 2 {
		printUsage(stderr)
		return usageErrorf("no command given")
	}
	name := args[1]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 2 {
			cmd, ok := lookup(args[2])
			if !ok {
				printUsage(stderr)
				return usageErrorf("unknown command %q", args[2])
			}
			fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
			cmd.setup(fs)
			printCommandUsage(stdout, cmd, fs)
			return nil
		}
		printUsage(stdout)
		return nil
	case "--version", "-version":
		name = "version"
	}
	cmd, ok := lookup(name)
	if !ok {
		printUsage(stderr)
		return usageErrorf("unknown command %q (see `leadrelay help`)", name)
	}
	fs := flag.NewFlagSet("leadrelay "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runCmd := cmd.setup(fs)
	rest := args[2:]
	// -h and --help anywhere ask for help, before anything else happens.
	if slices.ContainsFunc(rest, isHelpFlag) {
		printCommandUsage(stdout, cmd, fs)
		return nil
	}
	if err := fs.Parse(rest); err != nil {
		return usageErrorf("%s: %v\n%s", cmd.name, err, shortUsage(cmd))
	}
	err := runCmd(ctx, c, fs.Args())
	var ue *usageError
	if errors.As(err, &ue) {
		return usageErrorf("%s: %s\n%s", cmd.name, ue.msg, shortUsage(cmd))
	}
	return err
}

// shortUsage is the line a usage error ends with.
func shortUsage(c command) string {
	return fmt.Sprintf("usage: leadrelay %s (`leadrelay %s --help` says more)", strings.TrimSpace(c.name+" "+c.synopsis), c.name)
}

func isHelpFlag(a string) bool {
	return a == "-h" || a == "-help" || a == "--help" || a == "--h"
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "usage: leadrelay <command> [arguments]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\n`leadrelay <command> --help` describes a command. Settings are environment variables (README: Configuration).\n")
}

func printCommandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: leadrelay %s", c.name)
	if c.synopsis != "" {
		fmt.Fprintf(w, " %s", c.synopsis)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.summary)
	if c.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.details))
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(w, "\nflags:\n")
			first = false
		}
		fmt.Fprintf(w, "  --%s\n        %s\n", f.Name, f.Usage)
	})
}

// noArgs is a command's runner for commands that take no positional
// arguments.
func noArgs(f func(ctx context.Context, c cli) error) func(context.Context, cli, []string) error {
	return func(ctx context.Context, c cli, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unexpected argument %q", args[0])
		}
		return f(ctx, c)
	}
}

var versionCommand = command{
	name:    "version",
	summary: "print the version and the commit this binary was built from",
	setup: func(*flag.FlagSet) func(context.Context, cli, []string) error {
		return noArgs(func(_ context.Context, c cli) error {
			v, rev := buildVersion()
			fmt.Fprintf(c.stdout, "leadrelay %s (commit %s)\n", v, rev)
			return nil
		})
	},
}

// buildVersion is the version and commit set with -ldflags, else what Go
// recorded in the binary, else "devel" and "unknown".
func buildVersion() (string, string) {
	v, rev := version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if rev == "" {
		rev = "unknown"
	}
	return v, rev
}
