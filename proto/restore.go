package proto

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// KeyRestoreRetry is "1" when the agent retries a failed restore (a step on one node): a
// task launcher whose restored program dies abnormally (a signal, DMTCP's failure code)
// writes RestoreFailedFile and waits for the agent's RestoreReplyFile before it ends.
const KeyRestoreRetry = "restore_retry"

// KeyRestoreVerify is "1" when the agent verifies the generation to restore after its ready
// message (hashing every image takes a time that grows with the job): the task launchers
// wait for its RestoreReplyFile of attempt 1, which names the generation that verified
// (the one of the ready message or an older one), says to start from the top (Fresh), or
// gives up.
const KeyRestoreVerify = "restore_verify"

// RestoreFailedFile, in the step's runtime folder, is written by the task launcher of local
// task localID when its restored program died abnormally: "attempt=N\ncode=C\n".
func RestoreFailedFile(localID int) string { return fmt.Sprintf("restore-failed.%d", localID) }

// RestoreReplyFile, beside it, is the agent's answer to failed restores, replaced whole
// (temporary file, rename) at each attempt.
const RestoreReplyFile = "restore-reply"

// RestoreReply is the content of RestoreReplyFile: for Attempt, either the generation to
// restore again (Restore), or the end of the retries (GiveUp, what to tell the user), or Over:
// the restore went well and the time in which a failure counts as the restore's is over,
// so a task that ends now ends with its own status; or Fresh: no generation verified,
// start the task's program from the top.
type RestoreReply struct {
	Attempt int
	Restore string
	GiveUp  string
	Over    bool
	Fresh   bool
}

// Marshal is one key=value per line.
func (r RestoreReply) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "attempt=%d\n", r.Attempt)
	switch {
	case r.Over:
		b.WriteString("over=1\n")
	case r.Fresh:
		b.WriteString("fresh=1\n")
	case r.GiveUp != "":
		fmt.Fprintf(&b, "giveup=%s\n", strings.NewReplacer("\n", " ", "\r", " ").Replace(r.GiveUp))
	default:
		fmt.Fprintf(&b, "restore=%s\n", r.Restore)
	}
	return b.Bytes()
}

// ParseRestoreReply reads what Marshal wrote; anything else is an error.
func ParseRestoreReply(data []byte) (RestoreReply, error) {
	var r RestoreReply
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			return r, fmt.Errorf("restore reply: malformed line %q", sc.Text())
		}
		switch k {
		case "attempt":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return r, fmt.Errorf("restore reply: attempt=%q: want a number from 1", v)
			}
			r.Attempt = n
		case "restore":
			r.Restore = v
			seen++
		case "giveup":
			r.GiveUp = v
			seen++
		case "over":
			r.Over = v == "1"
			seen++
		case "fresh":
			r.Fresh = v == "1"
			seen++
		default:
			return r, fmt.Errorf("restore reply: unknown key %q", k)
		}
	}
	if r.Attempt == 0 || seen != 1 || (r.Restore == "" && r.GiveUp == "" && !r.Over && !r.Fresh) {
		return r, fmt.Errorf("restore reply: want attempt= and one of restore=, giveup=, over=1, fresh=1; have %q", data)
	}
	return r, nil
}

// RestoreFailure is the content of RestoreFailedFile: which attempt of the restore failed,
// and the exit status of the task's program (the shell's 128 + N for a signal).
type RestoreFailure struct {
	Attempt int
	Code    int
}

// Marshal is "attempt=N\ncode=C\n".
func (f RestoreFailure) Marshal() []byte {
	return []byte(fmt.Sprintf("attempt=%d\ncode=%d\n", f.Attempt, f.Code))
}

// ParseRestoreFailure reads what Marshal wrote; anything else is an error.
func ParseRestoreFailure(b []byte) (RestoreFailure, error) {
	var f RestoreFailure
	if _, err := fmt.Sscanf(string(b), "attempt=%d\ncode=%d\n", &f.Attempt, &f.Code); err != nil || f.Attempt < 1 ||
		string(f.Marshal()) != string(b) {
		return RestoreFailure{}, fmt.Errorf("restore failure record %q: want attempt=N and code=C", b)
	}
	return f, nil
}
