package protocol

import (
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/veil-project/veil/server"
)

// Admission keeps a server from accepting verifiable requests it cannot
// prove in time: proving costs seconds per batch while an evaluation costs
// milliseconds, so without a bound one client flooding cheap requests
// would push every other client's proofs past their deadlines (and earn
// the server NO_PROOF verdicts it did not deserve). A request is admitted
// only if its client has fewer than MaxPerClient requests recorded and not
// yet proven, and if the whole backlog, this request included, can be
// proven within Budget at the measured proving time.
type Admission struct {
	// MaxPerClient bounds one client key's outstanding requests (default 8).
	MaxPerClient int
	// Budget is how long the backlog may take to prove (default 30 s:
	// half of the default deadline of 60 one-second blocks).
	Budget time.Duration
	// Expire drops requests never revealed from the count after this long
	// (default 5 minutes).
	Expire time.Duration

	mu          sync.Mutex
	outstanding map[string]outstanding // request key (hex) -> what it holds
	proofTime   time.Duration          // moving average of one proof
}

type outstanding struct {
	client     string
	challenges int
	batch      int
	at         time.Time
}

func (a *Admission) defaults() {
	if a.MaxPerClient == 0 {
		a.MaxPerClient = 8
	}
	if a.Budget == 0 {
		a.Budget = 30 * time.Second
	}
	if a.Expire == 0 {
		a.Expire = 5 * time.Minute
	}
	if a.outstanding == nil {
		a.outstanding = map[string]outstanding{}
	}
}

// admit reserves room for a request of challenges challenges (proven in
// batches of batch) from client, or says why not.
func (a *Admission) admit(key, client []byte, challenges, batch int) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.defaults()
	now := time.Now()
	c := hex.EncodeToString(client)
	perClient, proofs := 0, 0
	for k, o := range a.outstanding {
		if now.Sub(o.at) > a.Expire {
			delete(a.outstanding, k)
			continue
		}
		if o.client == c {
			perClient++
		}
		proofs += (o.challenges + o.batch - 1) / o.batch
	}
	if perClient >= a.MaxPerClient {
		return fmt.Errorf("%w: this client has %d requests awaiting proof (at most %d): retry when they are proven", server.ErrBusy, perClient, a.MaxPerClient)
	}
	if t := a.proofTime; t > 0 && time.Duration(proofs+1)*t > a.Budget {
		return fmt.Errorf("%w: %d proofs are queued (%v each): the server would not prove this request within %v", server.ErrBusy, proofs, t.Round(time.Millisecond), a.Budget)
	}
	a.outstanding[hex.EncodeToString(key)] = outstanding{client: c, challenges: challenges, batch: batch, at: now}
	return nil
}

// release forgets requests that have been proven (or will not be).
func (a *Admission) release(keys ...[]byte) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range keys {
		delete(a.outstanding, hex.EncodeToString(k))
	}
}

// proved records how long one proof took.
func (a *Admission) proved(d time.Duration) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proofTime == 0 {
		a.proofTime = d
	} else {
		a.proofTime = (3*a.proofTime + d) / 4
	}
}
