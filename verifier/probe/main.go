// Command probe measures what decides the design of the on-chain verifier (issue 13) on this
// machine, before any of it is built:
//
//   - emulated: R1CS constraints per Goldilocks multiplication and addition when a BN254
//     circuit emulates the plonky2 field (gnark's std/math/emulated, emparams.Goldilocks), the
//     unit cost of verifying a Goldilocks proof without a BN254-friendly wrap;
//   - groth16: time and peak memory of Groth16 setup and proving for an R1CS of n native
//     constraints, to place a wrap circuit of a given size against the 24 GiB of the machine.
//
// Usage: go run . emulated [-ops N]   |   go run . groth16 -n 1000000
// Prints one line per figure; docs/BENCHMARKS.md records them.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/math/emulated"
	"github.com/consensys/gnark/std/math/emulated/emparams"
)

// mulChain: x_{i+1} = x_i * x_i + i, n times, in the native BN254 field.
type mulChain struct {
	X frontend.Variable `gnark:",public"`
	Y frontend.Variable
	n int
}

func (c *mulChain) Define(api frontend.API) error {
	x := c.X
	for i := 0; i < c.n; i++ {
		x = api.Add(api.Mul(x, x), i)
	}
	api.AssertIsEqual(x, c.Y)
	return nil
}

// goldilocksOps: `ops` multiplications (or additions) of emulated Goldilocks elements.
type goldilocksOps struct {
	A, B emulated.Element[emparams.Goldilocks]
	ops  int
	add  bool
}

func (c *goldilocksOps) Define(api frontend.API) error {
	f, err := emulated.NewField[emparams.Goldilocks](api)
	if err != nil {
		return err
	}
	x := &c.A
	for i := 0; i < c.ops; i++ {
		if c.add {
			x = f.Add(x, &c.B)
		} else {
			x = f.Mul(x, &c.B)
		}
	}
	f.AssertIsEqual(x, x)
	return nil
}

// peakRSS is the process's peak resident set (VmHWM) in MiB.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			var kb int
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")), "%d", &kb)
			return fmt.Sprintf("%d MiB", kb/1024)
		}
	}
	return "unknown"
}

func emulatedCost(ops int) {
	for _, add := range []bool{false, true} {
		c := &goldilocksOps{ops: ops, add: add}
		cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
		if err != nil {
			panic(err)
		}
		op := "multiplication"
		if add {
			op = "addition"
		}
		fmt.Printf("emulated Goldilocks %s: %.1f R1CS constraints each (%d ops: %d constraints)\n",
			op, float64(cs.GetNbConstraints())/float64(ops), ops, cs.GetNbConstraints())
	}
}

func groth16Cost(n int) {
	t := time.Now()
	c := &mulChain{n: n}
	cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		panic(err)
	}
	fmt.Printf("compile: %d constraints in %v (peak %s)\n", cs.GetNbConstraints(), time.Since(t).Round(time.Millisecond), peakRSS())
	t = time.Now()
	pk, vk, err := groth16.Setup(cs)
	if err != nil {
		panic(err)
	}
	fmt.Printf("setup: %v (peak %s)\n", time.Since(t).Round(time.Millisecond), peakRSS())
	x, y := 3, 3
	yv := frontend.Variable(nil)
	_ = y
	// The witness: run the chain natively in the scalar field.
	mod := ecc.BN254.ScalarField()
	acc := newInt(int64(x))
	for i := 0; i < n; i++ {
		acc.Mul(acc, acc)
		acc.Add(acc, newInt(int64(i)))
		acc.Mod(acc, mod)
	}
	yv = acc
	w, err := frontend.NewWitness(&mulChain{X: x, Y: yv, n: n}, ecc.BN254.ScalarField())
	if err != nil {
		panic(err)
	}
	t = time.Now()
	proof, err := groth16.Prove(cs, pk, w)
	if err != nil {
		panic(err)
	}
	fmt.Printf("prove: %v (peak %s, %d cores)\n", time.Since(t).Round(time.Millisecond), peakRSS(), runtime.NumCPU())
	pub, _ := w.Public()
	t = time.Now()
	if err := groth16.Verify(proof, vk, pub); err != nil {
		panic(err)
	}
	fmt.Printf("verify: %v\n", time.Since(t).Round(time.Microsecond))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe emulated [-ops N] | probe groth16 -n N")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	ops := fs.Int("ops", 1000, "emulated operations to compile")
	n := fs.Int("n", 1<<20, "native constraints of the Groth16 circuit")
	_ = fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "emulated":
		emulatedCost(*ops)
	case "groth16":
		groth16Cost(*n)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
