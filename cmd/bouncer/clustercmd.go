package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/wire"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func init() { commands = append(commands, newClusterCmd) }

type clusterFlags struct {
	clientFlags
	json bool
}

func newClusterCmd() *cobra.Command {
	var f clusterFlags
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "See and change a replicated group: status, add, remove, transfer-leader",
		Long: `Administer a replicated group of lock nodes. --addr (or BOUNCER_ADDR) names one
or more members' client addresses, comma-separated; status asks the first that
answers (and the leader, for its view of the others), and the changes go to the
leader, found by following the members' refusals.`,
		Args: usageArgs(cobra.NoArgs),
	}
	f.register(cmd.PersistentFlags())
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print JSON")
	emit := func(out io.Writer, m proto.Message, show func(io.Writer, proto.Message)) error {
		if f.json {
			b, err := json.Marshal(clusterJSON(m))
			if err != nil {
				return err
			}
			fmt.Fprintln(out, string(b))
			return nil
		}
		show(out, m)
		return nil
	}
	run := func(do func(ctx context.Context, c pb.ClusterClient) (proto.Message, error), show func(io.Writer, proto.Message)) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			m, err := clusterCall(cmd.Context(), f, do)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), m, show)
		}
	}
	showVoters := func(out io.Writer, m proto.Message) {
		fmt.Fprintf(out, "voters: %v\n", m.(*pb.MembershipResponse).GetVoters())
	}
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Members, leader, term, commit and applied index, each member's lag, the last snapshot",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			// A follower's answer sends the call on to the leader, whose view
			// has every member's progress; if the leader cannot be asked, the
			// follower's answer it is.
			var fallback *pb.ClusterStatus
			err := run(func(ctx context.Context, c pb.ClusterClient) (proto.Message, error) {
				st, err := c.Status(ctx, &pb.ClusterStatusRequest{})
				if err != nil || st.Leader == st.Id || st.Leader == 0 || fallback != nil {
					return st, err
				}
				fallback = st
				for _, m := range st.Members {
					if m.Id == st.Leader && m.ClientAddr != "" {
						return nil, wire.NotLeaderError(m.ClientAddr)
					}
				}
				return st, nil
			}, showClusterStatus)(cmd, args)
			if err != nil && fallback != nil {
				return emit(cmd.OutOrStdout(), fallback, showClusterStatus)
			}
			return err
		},
	}
	var peerAddr, clientAddr string
	add := &cobra.Command{
		Use:   "add ID --peer HOST:PORT --client HOST:PORT",
		Short: "Add a member (started with 'serve --join' it asks for this itself)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := memberID(args[0])
			if err != nil {
				return err
			}
			if peerAddr == "" || clientAddr == "" {
				return usageError("add: --peer and --client are needed")
			}
			return run(func(ctx context.Context, c pb.ClusterClient) (proto.Message, error) {
				return c.AddMember(ctx, &pb.AddMemberRequest{Id: id, PeerAddr: peerAddr, ClientAddr: clientAddr})
			}, showVoters)(cmd, args)
		},
	}
	add.Flags().StringVar(&peerAddr, "peer", "", "the new member's peer address")
	add.Flags().StringVar(&clientAddr, "client", "", "the new member's client address")
	byID := func(use, short string, call func(context.Context, pb.ClusterClient, uint64) (proto.Message, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  usageArgs(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := memberID(args[0])
				if err != nil {
					return err
				}
				return run(func(ctx context.Context, c pb.ClusterClient) (proto.Message, error) { return call(ctx, c, id) },
					showVoters)(cmd, args)
			},
		}
	}
	remove := byID("remove ID", "Remove a member (the leader too: it steps down)",
		func(ctx context.Context, c pb.ClusterClient, id uint64) (proto.Message, error) {
			return c.RemoveMember(ctx, &pb.RemoveMemberRequest{Id: id})
		})
	transfer := byID("transfer-leader ID", "Hand the leadership to a member",
		func(ctx context.Context, c pb.ClusterClient, id uint64) (proto.Message, error) {
			return c.TransferLeader(ctx, &pb.TransferLeaderRequest{Id: id})
		})
	cmd.AddCommand(statusCmd, add, remove, transfer)
	return cmd
}

func memberID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, usageError("member id %q: want a number > 0", s)
	}
	return id, nil
}

// clusterCall makes the call at the members named by --addr in turn,
// following not-leader refusals to the leader, within --timeout.
func clusterCall(ctx context.Context, f clusterFlags, do func(context.Context, pb.ClusterClient) (proto.Message, error)) (proto.Message, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.timeout <= 0 {
		return nil, usageError("--timeout %v: must be positive (how long to wait for the members, e.g. 10s)", f.timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cfg, err := f.config()
	if err != nil {
		return nil, usageError("%v", err)
	}
	addrs, err := hostPorts(f.addr)
	if err != nil {
		return nil, err
	}
	if err := reach(addrs, f.timeout); err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{cfg.Token, cfg.TLS != nil}))
	}
	queue := addrs
	var last error
	for hops := 0; len(queue) > 0 && hops < 16; hops++ {
		addr := strings.TrimSpace(queue[0])
		queue = queue[1:]
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			return nil, usageError("--addr %q: %v", addr, err)
		}
		m, err := do(ctx, pb.NewClusterClient(conn))
		_ = conn.Close()
		if err == nil {
			return m, nil
		}
		last = fmt.Errorf("%s: %s", addr, describe(err))
		if leader, ok := wire.LeaderHint(err); ok {
			if leader != "" {
				queue = append([]string{leader}, queue...)
			} else if len(queue) == 0 {
				select { // an election is on: ask again shortly
				case <-time.After(300 * time.Millisecond):
					queue = append(queue, addr)
				case <-ctx.Done():
				}
			}
			continue
		}
		switch grpcstatus.Code(err) {
		case codes.Unimplemented:
			return nil, &exitError{code: exitUnavailable, err: fmt.Errorf("%s is a lone node, not a member of a replicated group", addr)}
		case codes.Unavailable, codes.DeadlineExceeded:
			continue // the next member
		}
		return nil, &exitError{code: exitUnavailable, err: last}
	}
	if last == nil {
		last = errors.New("no member to ask")
	}
	return nil, &exitError{code: exitUnavailable, err: last}
}

type bearerToken struct {
	token  string
	secure bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return false }

func showClusterStatus(out io.Writer, m proto.Message) {
	st := m.(*pb.ClusterStatus)
	fmt.Fprintf(out, "cluster %q, asked member %d: leader %d, term %d, commit %d, applied %d, last snapshot %d\n",
		st.ClusterId, st.Id, st.Leader, st.Term, st.Commit, st.Applied, st.SnapshotIndex)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tCLIENT\tPEER\tMATCH\tLAG\tACTIVE")
	for _, mb := range st.Members {
		role := "follower"
		if mb.Id == st.Leader {
			role = "leader"
		}
		match, lag, active := "-", "-", "-"
		if st.Leader == st.Id { // the leader's view of the others
			match, active = fmt.Sprint(mb.Match), fmt.Sprint(mb.RecentActive)
			if mb.Match <= st.Commit {
				lag = fmt.Sprint(st.Commit - mb.Match)
			} else {
				lag = "0"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", mb.Id, role, mb.ClientAddr, mb.PeerAddr, match, lag, active)
	}
	_ = tw.Flush()
}

// clusterStatusJSON is what `cluster status --json` prints: ids and
// indexes as JSON numbers, like every other --json output (protojson would
// print 64-bit numbers as strings).
type clusterStatusJSON struct {
	ID            uint64             `json:"id"`
	Leader        uint64             `json:"leader"` // 0: none known
	Term          uint64             `json:"term"`
	Commit        uint64             `json:"commit"`
	Applied       uint64             `json:"applied"`
	SnapshotIndex uint64             `json:"snapshot_index"`
	ClusterID     string             `json:"cluster_id"`
	Members       []memberStatusJSON `json:"members"`
}

type memberStatusJSON struct {
	ID           uint64 `json:"id"`
	ClientAddr   string `json:"client_addr"`
	PeerAddr     string `json:"peer_addr"`
	Match        uint64 `json:"match"`         // on the leader's answer: the index the member has
	RecentActive bool   `json:"recent_active"` // on the leader's answer
}

// clusterJSON is the --json form of a Cluster call's answer.
func clusterJSON(m proto.Message) any {
	switch m := m.(type) {
	case *pb.ClusterStatus:
		st := clusterStatusJSON{ID: m.Id, Leader: m.Leader, Term: m.Term, Commit: m.Commit, Applied: m.Applied,
			SnapshotIndex: m.SnapshotIndex, ClusterID: m.ClusterId, Members: []memberStatusJSON{}}
		for _, mm := range m.Members {
			st.Members = append(st.Members, memberStatusJSON{ID: mm.Id, ClientAddr: mm.ClientAddr, PeerAddr: mm.PeerAddr,
				Match: mm.Match, RecentActive: mm.RecentActive})
		}
		return st
	case *pb.MembershipResponse:
		return struct {
			Voters []uint64 `json:"voters"`
		}{append([]uint64{}, m.Voters...)}
	}
	return m
}
