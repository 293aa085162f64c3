// CIFAR-10 and CIFAR-100, the "binary version" of the official archives
// (A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
// 2009; https://www.cs.toronto.edu/~kriz/cifar.html). Not in Debian: the user
// downloads and extracts the archive (docs/datasets.md).
//
// A file is a sequence of fixed-size records, nothing else (no header):
//   CIFAR-10:  1 label byte (0..9), then 3072 pixel bytes          = 3073 bytes
//   CIFAR-100: 1 coarse label byte (0..19), 1 fine label byte (0..99), then
//              3072 pixel bytes                                     = 3074 bytes
// The 3072 pixels are the red, green and blue planes of a 32 x 32 image, each
// plane row-major: exactly a 3 x 32 x 32 CHW image, so a sample's features
// are the NCHW layout of docs/contract.md §9 as stored. Pixels become
// x / 255.0f (one f32 division: 0 -> 0.0f, 255 -> 1.0f exactly); shape
// {3, 32, 32}.
//
// Folders (as the archives extract):
//   cifar-10-batches-bin/  data_batch_1.bin .. data_batch_5.bin (train, in this
//                          order), test_batch.bin, batches.meta.txt (class names)
//   cifar-100-binary/      train.bin, test.bin, fine_label_names.txt,
//                          coarse_label_names.txt
// The names file is optional; when present it must hold exactly num_classes
// non-blank lines (trailing blank lines are ignored).
//
// Files are opened as every input is (models/common/input_file.h). Errors are
// DataError (datasets.h) naming the path: a missing folder or file (with how
// to get the data), anything but a regular file (a directory, a FIFO, a
// device), a data file over 2 GiB or a names file over 4 MiB, an empty file,
// a length that is not a whole number of records (a truncated last record),
// a label outside its range (with the record number and byte offset).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "datasets/datasets.h"

namespace hdq::datasets {

enum class CifarVariant { cifar10, cifar100 };
// CIFAR-100 has two label sets: the 100 fine classes or the 20 superclasses.
enum class CifarLabels { fine, coarse };

inline constexpr std::size_t kCifarPixels = 3 * 32 * 32;

// Where the loaders (and a scenario without data.path) look by default.
inline constexpr const char* kCifar10Dir = "/usr/share/datasets/cifar-10-batches-bin";
inline constexpr const char* kCifar100Dir = "/usr/share/datasets/cifar-100-binary";

// One binary file of `variant` records; CIFAR-100 takes `labels`' byte (coarse
// is byte 0, fine byte 1). No class names.
Dataset read_cifar_file(const std::filesystem::path& file, CifarVariant variant,
                        CifarLabels labels = CifarLabels::fine);

// The folder cifar-10-batches-bin: train = the five data batches in order,
// test = test_batch.bin; 10 classes, names from batches.meta.txt when present.
// limit_train / limit_test > 0 keep the first that many samples (every file is
// still read and checked); 0 keeps all (50000 / 10000).
TrainTest load_cifar10(const std::filesystem::path& dir = kCifar10Dir,
                       std::size_t limit_train = 0, std::size_t limit_test = 0);

// The folder cifar-100-binary: train.bin, test.bin; 100 fine or 20 coarse
// classes, names from fine_label_names.txt / coarse_label_names.txt when present.
TrainTest load_cifar100(const std::filesystem::path& dir = kCifar100Dir,
                        CifarLabels labels = CifarLabels::fine, std::size_t limit_train = 0,
                        std::size_t limit_test = 0);

}  // namespace hdq::datasets
