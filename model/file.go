package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/veil-project/veil/pixels"
)

// FormatVersion identifies the model file format.
const FormatVersion = "veil-model/1"

// MaxFileBytes bounds a model file; the default model is about 60 KB.
const MaxFileBytes = 64 << 20

// fileLayer is a Layer as stored on disk: weights as base64 of little-endian
// int8 (weight_bits <= 8) or int16 (weight_bits <= 16).
type fileLayer struct {
	Layer
	Weights string  `json:"weights,omitempty"`
	Bias    []int64 `json:"bias,omitempty"`
}

// TrainingInfo records how a model was made. It is informative only and is
// covered by the checksum like everything else.
type TrainingInfo struct {
	Seed              uint64  `json:"seed"`
	Epochs            int     `json:"epochs"`
	BatchSize         int     `json:"batch_size"`
	LearningRate      float64 `json:"learning_rate"`
	Augment           bool    `json:"augment"`
	FloatAccuracy     float64 `json:"float_accuracy"`
	FixedAccuracy     float64 `json:"fixed_accuracy"`
	TestImages        int     `json:"test_images"`
	CalibrationImages int     `json:"calibration_images"`
}

type fileModel struct {
	Format      string        `json:"format"`
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Classes     int           `json:"classes"`
	Input       fileInput     `json:"input"`
	Layers      []fileLayer   `json:"layers"`
	Training    *TrainingInfo `json:"training,omitempty"`
	SHA256      string        `json:"sha256"`
}

type fileInput struct {
	Shape []int `json:"shape"`
	Bits  int   `json:"bits"`
	Frac  int   `json:"frac"`
}

// File is a model together with its training record, as read from or written
// to disk.
type File struct {
	Model    *Model
	Training *TrainingInfo
	// SHA256 is the checksum stored in (or computed for) the file, in hex.
	SHA256 string
}

// ErrChecksum is returned when a model file's content does not match its
// SHA-256.
var ErrChecksum = errors.New("model file checksum mismatch")

func (f *File) toFile() (*fileModel, error) {
	m := f.Model
	fm := &fileModel{
		Format:      FormatVersion,
		Name:        m.Name,
		Description: m.Description,
		Classes:     m.Classes,
		Input:       fileInput{Shape: []int{28, 28}, Bits: InputBits, Frac: InputFrac},
		Training:    f.Training,
	}
	for _, l := range m.Layers {
		fl := fileLayer{Layer: l}
		if l.Kind == KindDense {
			var buf bytes.Buffer
			for _, w := range l.W {
				if l.WeightBits <= 8 {
					buf.WriteByte(byte(int8(w)))
				} else {
					_ = binary.Write(&buf, binary.LittleEndian, int16(w))
				}
			}
			fl.Weights = base64.StdEncoding.EncodeToString(buf.Bytes())
			fl.Bias = l.B
		}
		fm.Layers = append(fm.Layers, fl)
	}
	sum, err := fm.checksum()
	if err != nil {
		return nil, err
	}
	fm.SHA256 = sum
	return fm, nil
}

// checksum is the SHA-256 of the canonical JSON encoding with the sha256
// field empty. encoding/json writes struct fields in a fixed order, so the
// encoding is canonical whatever the file's whitespace.
func (fm *fileModel) checksum() (string, error) {
	c := *fm
	c.SHA256 = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encode model: %w", err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// Encode writes the model file as indented JSON.
func (f *File) Encode(w io.Writer) error {
	if err := f.Model.Validate(); err != nil {
		return fmt.Errorf("encode model: %w", err)
	}
	fm, err := f.toFile()
	if err != nil {
		return err
	}
	f.SHA256 = fm.SHA256
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(fm); err != nil {
		return fmt.Errorf("encode model: %w", err)
	}
	return nil
}

// Decode reads a model file, checks its format, its checksum and its
// consistency.
func Decode(r io.Reader) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("read model: file is larger than %d MiB", MaxFileBytes>>20)
	}
	var fm fileModel
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fm); err != nil {
		return nil, fmt.Errorf("read model: not a model file: %w", err)
	}
	if fm.Format != FormatVersion {
		return nil, fmt.Errorf("read model: format %q, want %q", fm.Format, FormatVersion)
	}
	sum, err := fm.checksum()
	if err != nil {
		return nil, err
	}
	if fm.SHA256 != sum {
		return nil, fmt.Errorf("read model %q: %w (file says %.16s…, content hashes to %.16s…)", fm.Name, ErrChecksum, fm.SHA256, sum)
	}
	if fm.Input.Bits != InputBits || fm.Input.Frac != InputFrac || len(fm.Input.Shape) != 2 || fm.Input.Shape[0]*fm.Input.Shape[1] != pixels.Count {
		return nil, fmt.Errorf("read model %q: unsupported input %+v", fm.Name, fm.Input)
	}
	m := &Model{Name: fm.Name, Description: fm.Description, Classes: fm.Classes}
	for i, fl := range fm.Layers {
		l := fl.Layer
		if l.Kind == KindDense {
			raw, err := base64.StdEncoding.DecodeString(fl.Weights)
			if err != nil {
				return nil, fmt.Errorf("read model %q: layer %d weights: %w", fm.Name, i, err)
			}
			width := 1
			if l.WeightBits > 8 {
				width = 2
			}
			if l.In <= 0 || l.Out <= 0 || len(raw) != l.In*l.Out*width {
				return nil, fmt.Errorf("read model %q: layer %d has %d weight bytes, want %d×%d×%d", fm.Name, i, len(raw), l.Out, l.In, width)
			}
			l.W = make([]int32, l.In*l.Out)
			for k := range l.W {
				if width == 1 {
					l.W[k] = int32(int8(raw[k]))
				} else {
					l.W[k] = int32(int16(binary.LittleEndian.Uint16(raw[2*k:])))
				}
			}
			l.B = fl.Bias
		} else if fl.Weights != "" || len(fl.Bias) != 0 {
			return nil, fmt.Errorf("read model %q: layer %d (%s) has weights", fm.Name, i, l.Kind)
		}
		m.Layers = append(m.Layers, l)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("read model %q: %w", fm.Name, err)
	}
	return &File{Model: m, Training: fm.Training, SHA256: fm.SHA256}, nil
}

// Load reads a model file from disk.
func Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open model: %w", err)
	}
	defer fh.Close()
	f, err := Decode(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Save writes a model file atomically (write to a temporary file, fsync,
// rename).
func (f *File) Save(path string) error {
	var buf bytes.Buffer
	if err := f.Encode(&buf); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes(), 0o644)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fh.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// jsonEncode writes a file structure as indented JSON.
func jsonEncode(w io.Writer, fm *fileModel) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(fm)
}
